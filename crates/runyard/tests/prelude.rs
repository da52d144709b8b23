//! `use runyard::prelude::*;` is all a task definition and a simple run
//! need.

use runyard::prelude::*;
use serde::{Deserialize, Serialize};

/// Two numbers.
#[derive(Debug, Serialize, Deserialize, Params)]
#[serde(deny_unknown_fields)]
struct Pair {
    a: i64,
    #[param(min = 0)]
    b: i64,
}

/// Adds.
#[task(max_attempts = 1)]
fn add(p: Pair, ctx: &Context) -> Result<i64, TaskError> {
    ctx.check()?;
    Ok(p.a + p.b)
}

/// Says it is done, asynchronously.
#[task(worker_concurrency = 2)]
async fn done(_: (), _ctx: Context) -> Result<&'static str, TaskError> {
    Ok("done")
}

#[test]
fn the_prelude_defines_tasks_and_runs_jobs_of_them() {
    let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
    let report = engine
        .run([
            add::job(Pair { a: 2, b: 40 }),
            done::job(()).mode(Mode::Auto),
        ])
        .unwrap();
    assert!(report.summary.all_succeeded());
    assert_eq!(report.jobs[0].output.as_json(), "42");
    assert_eq!(report.jobs[1].output.as_json(), r#""done""#);
}
