//! Flow control through the public API: limits set by `#[task]`, a run's
//! task limits, and a typed job's flow options.

use std::time::Duration;

use runyard::flow::{FlowKey, OnConflict, Rate};
use runyard::prelude::*;

/// At most four at once across a queue, ten starts a second, two at once
/// in one engine.
#[task(queue_concurrency = 4, rate = "10/s", worker_concurrency = 2)]
fn sync_account(_: ()) -> Result<(), TaskError> {
    Ok(())
}

/// Five starts a minute, one at a time across a queue.
#[task(rate = "5/m", queue_concurrency = 1)]
fn report(_: ()) -> Result<(), TaskError> {
    Ok(())
}

/// No limits.
#[task]
fn plain(_: ()) -> Result<(), TaskError> {
    Ok(())
}

fn rate(s: &str) -> Rate {
    s.parse().unwrap()
}

#[test]
fn the_macros_limits_are_the_tasks_defaults() {
    let registry = Registry::linked().unwrap();
    let d = registry
        .task(registry.lookup("sync_account").unwrap())
        .defaults();
    assert_eq!(d.queue_concurrency, Some(4));
    assert_eq!(d.rate, Some(rate("10/s")));
    assert_eq!(
        d.worker_concurrency,
        Some(2),
        "the per-engine cap stays apart"
    );
    let d = registry.task(registry.lookup("report").unwrap()).defaults();
    assert_eq!((d.queue_concurrency, d.rate), (Some(1), Some(rate("5/m"))));
    assert_eq!(d.worker_concurrency, None);
    let d = registry.task(registry.lookup("plain").unwrap()).defaults();
    assert_eq!((d.queue_concurrency, d.rate), (None, None));
}

#[test]
fn a_typed_job_carries_its_flow_options_and_a_runs_limits() {
    let config = EngineConfig::builder()
        .task_limits("report", Some(2), None)
        .build()
        .unwrap();
    let engine = Engine::new(Registry::linked().unwrap(), config);
    let tenant: FlowKey = "tenant:7".parse().unwrap();
    let job = engine
        .prepare(
            &sync_account::job(())
                .unique_key("sync:7")
                .unique_for(Duration::from_secs(30))
                .on_conflict(OnConflict::Skip)
                .concurrency_key(tenant.clone(), Some(1))
                .rate_key("stripe".parse().unwrap(), None),
        )
        .unwrap();
    assert_eq!(job.unique.as_ref().map(|u| u.key.as_str()), Some("sync:7"));
    assert_eq!(job.limits.task_concurrency, Some(4));
    assert_eq!(job.limits.concurrency_key, Some((tenant, Some(1))));
    assert_eq!(
        job.limits.fairness_key().map(ToString::to_string),
        Some("tenant:7".to_string())
    );
    let job = engine.prepare(&report::job(())).unwrap();
    assert_eq!(job.limits.task_concurrency, Some(2), "the run's limit");
    assert_eq!(job.limits.task_rate, Some(rate("5/m")), "the task's rate");
}

#[test]
fn a_run_with_limits_for_an_unknown_task_does_not_start() {
    let config = EngineConfig::builder()
        .task_limits("sync_acount", None, Some(rate("1/s")))
        .build()
        .unwrap();
    let engine = Engine::new(Registry::linked().unwrap(), config);
    let e = engine.run([plain::job(())]).unwrap_err();
    let unknown = match &e {
        runyard::RunError::Start(s) => s.unknown_task().cloned(),
        _ => None,
    };
    let unknown = unknown.unwrap_or_else(|| panic!("not refused for its limits: {e}"));
    assert_eq!(
        unknown.suggestions.first().map(String::as_str),
        Some("sync_account")
    );
}
