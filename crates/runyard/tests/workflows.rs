//! Workflows through the public API: jobs see their parents' outputs in
//! every mode (process mode included: this binary is its own child
//! process, so it runs without the test harness and enters the child role
//! first thing in `main`), a failure cancels the jobs after it naming the
//! cause, and the events say so.
//!
//! `cargo test -p runyard --test workflows [FILTER]`.

use std::sync::{Arc, Mutex};

use runyard::event::{Event, EventSink};
use runyard::queue::{MemoryQueue, Queue};
use runyard::workflow::{Cause, OUTPUT_CAP};
use runyard::{
    task, Context, Engine, EngineConfig, JobId, JobState, Mode, Params, Registry, RunIf,
    SubmitError, TaskError, Workflow,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Params)]
struct N {
    n: u64,
}

#[task]
fn seed(p: N) -> Result<u64, TaskError> {
    Ok(p.n)
}

#[derive(Deserialize)]
struct FromSeed {
    seed: u64,
}

#[task]
fn double(_: (), ctx: &Context) -> Result<u64, TaskError> {
    Ok(2 * ctx.parents::<FromSeed>()?.seed)
}

#[derive(Deserialize)]
struct FromDouble {
    double: u64,
}

/// An async task in the chain: its context carries the parents too.
#[task]
async fn inc(_: (), ctx: Context) -> Result<u64, TaskError> {
    Ok(ctx.parents::<FromDouble>()?.double + 1)
}

#[derive(Deserialize)]
struct FromInc {
    inc: u64,
}

#[task]
fn shard(p: N, ctx: &Context) -> Result<u64, TaskError> {
    Ok(p.n * 10 + ctx.parents::<FromInc>()?.inc)
}

#[derive(Deserialize)]
struct FanIn {
    shard: Vec<u64>,
    inc: u64,
}

#[task]
fn total(_: (), ctx: &Context) -> Result<u64, TaskError> {
    let p = ctx.parents::<FanIn>()?;
    Ok(p.shard.iter().sum::<u64>() + p.inc)
}

/// Where it ran, and what it saw.
#[task]
fn whereami(_: (), ctx: &Context) -> Result<(u32, serde_json::Value), TaskError> {
    Ok((std::process::id(), ctx.parents()?))
}

#[task(max_attempts = 1)]
fn boom(_: ()) -> Result<u64, TaskError> {
    Err(TaskError::permanent("boom"))
}

/// Gives back the raw parents object.
#[task]
fn echo(_: (), ctx: &Context) -> Result<serde_json::Value, TaskError> {
    ctx.parents::<serde_json::Value>()
}

/// An output far past the cap.
#[task]
fn big(_: ()) -> Result<String, TaskError> {
    Ok("x".repeat(OUTPUT_CAP * 2))
}

fn engine(mode: Mode) -> Engine {
    let mut config = EngineConfig::builder().mode(mode);
    if mode == Mode::Process {
        let mut p = runyard::process::ProcessConfig::current_exe().unwrap();
        p.workers = 2;
        config = config.process(p);
    }
    Engine::new(Registry::linked().unwrap(), config.build().unwrap())
}

/// Keeps every event as JSON.
#[derive(Default)]
struct Kept(Mutex<Vec<serde_json::Value>>);

impl EventSink for Kept {
    fn event(&self, e: &Event<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_value(e).unwrap());
    }
}

impl Kept {
    fn of(&self, job: JobId) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["job"] == job.0)
            .cloned()
            .collect()
    }

    fn types(&self, job: JobId) -> Vec<String> {
        self.of(job)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }
}

fn a_chain_and_a_fan_in_see_their_parents_outputs(mode: Mode) {
    let engine = engine(mode);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine.start(queue).unwrap();
    let wf = Workflow::new();
    let s = wf.add("seed", seed::job(N { n: 3 }));
    let d = wf.add("double", double::job(())).after(&[s]);
    // Async tasks run on the async executor whatever the run's mode.
    let i = wf.add("inc", inc::job(()).mode(Mode::Async)).after(&[d]);
    let sh = wf
        .add_many("shard", (1..=4).map(|n| shard::job(N { n })))
        .after(&[i]);
    let t = wf.add("total", total::job(())).after(&[sh, i]);
    let w = wf.add("whereami", whereami::job(())).after(&[t]);
    let ids = run.submit_workflow(&wf).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let output = |id: JobId| {
        let j = report.jobs.iter().find(|j| j.id == id).unwrap();
        assert_eq!(j.state, JobState::Succeeded, "{mode:?}: {j:?}");
        j.output.as_json().to_string()
    };
    assert_eq!(output(ids.of(d)[0]), "6", "{mode:?}");
    assert_eq!(output(ids.of(i)[0]), "7", "{mode:?}");
    let shards: Vec<String> = ids.of(sh).iter().map(|&id| output(id)).collect();
    assert_eq!(shards, ["17", "27", "37", "47"], "{mode:?}");
    assert_eq!(output(ids.of(t)[0]), "135", "{mode:?}");
    let (pid, seen): (u32, serde_json::Value) =
        serde_json::from_str(&output(ids.of(w)[0])).unwrap();
    assert_eq!(seen, serde_json::json!({"total": 135}));
    assert_eq!(
        pid != std::process::id(),
        mode == Mode::Process,
        "{mode:?}: in a child process in process mode only"
    );
    let total = report.jobs.iter().find(|j| j.id == ids.of(t)[0]).unwrap();
    assert_eq!(total.name.as_deref(), Some("total"));
    let mut after = ids.of(sh).to_vec();
    after.extend(ids.of(i));
    after.sort();
    let mut seen = total.after.clone();
    seen.sort();
    assert_eq!(seen, after);
}

fn chain_and_fan_in_thread() {
    a_chain_and_a_fan_in_see_their_parents_outputs(Mode::Thread);
}

fn chain_and_fan_in_async() {
    a_chain_and_a_fan_in_see_their_parents_outputs(Mode::Async);
}

fn chain_and_fan_in_auto() {
    a_chain_and_a_fan_in_see_their_parents_outputs(Mode::Auto);
}

fn chain_and_fan_in_process() {
    a_chain_and_a_fan_in_see_their_parents_outputs(Mode::Process);
}

/// A failed job cancels what is after it, transitively, naming it; a
/// cleanup step runs anyway; the events say blocked, unblocked and
/// cancelled with the cause.
fn a_failure_cancels_its_dependents_naming_the_cause() {
    let kept = Arc::new(Kept::default());
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine(Mode::Auto)
        .start_with_sinks(queue, vec![kept.clone() as Arc<dyn EventSink>])
        .unwrap();
    let wf = Workflow::new();
    let b = wf.add("boom", boom::job(()));
    let c1 = wf.add("after_boom", echo::job(())).after(&[b]);
    let c2 = wf.add("after_that", echo::job(())).after(&[c1]);
    let clean = wf
        .add("cleanup", echo::job(()))
        .after(&[c1])
        .run_if(RunIf::Always);
    let ids = run.submit_workflow(&wf).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let view = |id: JobId| report.jobs.iter().find(|j| j.id == id).unwrap();
    let boom_id = ids.of(b)[0];
    let cause = Cause {
        job: boom_id,
        name: Some("boom".into()),
    };
    assert_eq!(view(boom_id).state, JobState::Dead);
    for s in [c1, c2] {
        let j = view(ids.of(s)[0]);
        assert_eq!(j.state, JobState::Cancelled, "{j:?}");
        assert_eq!(j.cancelled_by.as_deref(), Some(&cause), "{j:?}");
        assert!(j.attempts.is_empty());
        assert_eq!(
            kept.types(j.id),
            ["blocked", "cancelled"],
            "{:?}",
            kept.of(j.id)
        );
        let cancelled = kept.of(j.id).pop().unwrap();
        assert_eq!(cancelled["data"]["cancelled_by"]["job"], boom_id.0);
        assert_eq!(cancelled["data"]["cancelled_by"]["name"], "boom");
        assert_eq!(cancelled["data"]["task"], "echo");
    }
    let cleanup = view(ids.of(clean)[0]);
    assert_eq!(cleanup.state, JobState::Succeeded, "{cleanup:?}");
    assert_eq!(
        kept.types(cleanup.id),
        ["blocked", "unblocked", "running", "succeeded"]
    );
    assert_eq!(kept.types(boom_id), ["queued", "running", "dead"]);
    // A cleanup step after a cancelled job sees its output as null.
    assert_eq!(
        cleanup.output.as_json(),
        r#"{"after_boom":null}"#,
        "the parents object of a run_if=always step"
    );
}

/// A stored output is capped, and so is what the next job sees.
fn outputs_are_capped_when_recorded() {
    let engine = engine(Mode::Thread);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine.start(queue).unwrap();
    let wf = Workflow::new();
    let b = wf.add("big", big::job(()));
    let e = wf.add("echo", echo::job(())).after(&[b]);
    let ids = run.submit_workflow(&wf).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let view = |id: JobId| report.jobs.iter().find(|j| j.id == id).unwrap();
    let stored = view(ids.of(b)[0]).output.as_json().to_string();
    assert!(stored.len() <= OUTPUT_CAP, "{}", stored.len());
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(v["truncated"]["bytes"], OUTPUT_CAP * 2 + 2);
    let seen: serde_json::Value =
        serde_json::from_str(view(ids.of(e)[0]).output.as_json()).unwrap();
    assert_eq!(seen["big"], v);
}

/// A workflow enqueued without a run, after a job already in the queue
/// (seen under its id); a bad one enqueues nothing.
fn a_workflow_is_enqueued_without_a_run_after_a_job_by_id() {
    let engine = engine(Mode::Thread);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let first = engine
        .enqueue_workflow(&*queue, &{
            let wf = Workflow::new();
            wf.add("seed", seed::job(N { n: 5 }));
            wf
        })
        .unwrap();
    let seed_id = first.named("seed").unwrap()[0];

    let bad = Workflow::new();
    bad.add("ok", echo::job(())).after_job(seed_id);
    bad.add("bad", runyard::JobSpec::new("no_such_task"));
    let e = engine.enqueue_workflow(&*queue, &bad).unwrap_err();
    assert!(
        matches!(&e, SubmitError::Step { step, copy: 1, .. } if step == "bad"),
        "{e}"
    );
    assert_eq!(
        queue.counts().unwrap().unfinished(),
        1,
        "nothing of it enqueued"
    );

    let wf = Workflow::new();
    let e = wf.add("echo", echo::job(())).after_job(seed_id);
    let ids = engine.enqueue_workflow(&*queue, &wf).unwrap();
    let run = engine.start(Arc::clone(&queue)).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let echo = report.jobs.iter().find(|j| j.id == ids.of(e)[0]).unwrap();
    assert_eq!(echo.output.as_json(), format!(r#"{{"{}":5}}"#, seed_id.0));
}

/// The async submit gives the same ids.
fn a_workflow_is_submitted_from_async_code() {
    let engine = engine(Mode::Auto);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine.start(queue).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let wf = Workflow::new();
    let s = wf.add("seed", seed::job(N { n: 4 }));
    wf.add("double", double::job(())).after(&[s]);
    // The future holds nothing of the workflow: it is checked at the call.
    let fut = run.submit_workflow_async(&wf);
    drop(wf);
    let ids = rt.block_on(fut).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let d = ids.named("double").unwrap()[0];
    let j = report.jobs.iter().find(|j| j.id == d).unwrap();
    assert_eq!(j.output.as_json(), "8");
}

fn main() {
    runyard::process::enter_if_child();
    let tests: &[(&str, fn())] = &[
        ("chain_and_fan_in_thread", chain_and_fan_in_thread),
        ("chain_and_fan_in_async", chain_and_fan_in_async),
        ("chain_and_fan_in_auto", chain_and_fan_in_auto),
        ("chain_and_fan_in_process", chain_and_fan_in_process),
        (
            "a_failure_cancels_its_dependents_naming_the_cause",
            a_failure_cancels_its_dependents_naming_the_cause,
        ),
        (
            "outputs_are_capped_when_recorded",
            outputs_are_capped_when_recorded,
        ),
        (
            "a_workflow_is_enqueued_without_a_run_after_a_job_by_id",
            a_workflow_is_enqueued_without_a_run_after_a_job_by_id,
        ),
        (
            "a_workflow_is_submitted_from_async_code",
            a_workflow_is_submitted_from_async_code,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("test result: ok. {ran} passed");
}
