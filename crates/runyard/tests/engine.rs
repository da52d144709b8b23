//! The engine through the public API, with tasks defined as users define them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runyard::event::{Event, EventSink};
use runyard::queue::{MemoryQueue, Queue};
use runyard::report::OutcomeKind;
use runyard::{
    task, AsyncTask, Context, Engine, EngineConfig, JobSpec, JobState, Mode, Params, Registry,
    SubmitError, TaskDef, TaskError,
};
use serde::{Deserialize, Serialize};

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// At most two at once, however many threads there are.
#[task(kind = "blocking", worker_concurrency = 2)]
fn limited(_: (), ctx: &Context) -> Result<(), TaskError> {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    let r = ctx.sleep(Duration::from_millis(20));
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    r
}

#[derive(Debug, Serialize, Deserialize, Params)]
#[serde(deny_unknown_fields)]
struct Greeting {
    /// Who.
    #[param(min_len = 1)]
    name: String,
    #[serde(default)]
    #[param(max = 3)]
    excitement: u8,
}

/// Greets.
#[task]
fn greet(p: Greeting) -> Result<String, TaskError> {
    Ok(format!(
        "hello {}{}",
        p.name,
        "!".repeat(p.excitement as usize)
    ))
}

/// An async task.
#[task(timeout = "5s")]
async fn wait_a_bit(_: (), _ctx: Context) -> Result<u32, TaskError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(7)
}

/// Asks to be retried after a given delay.
#[task(max_attempts = 2)]
fn busy(_: (), ctx: &Context) -> Result<(), TaskError> {
    if ctx.attempt() == 1 {
        return Err(TaskError::retry_after(Duration::from_millis(120), "busy"));
    }
    Ok(())
}

/// Sleeps until cancelled.
#[task(kind = "blocking")]
fn forever(_: (), ctx: &Context) -> Result<(), TaskError> {
    ctx.sleep(Duration::from_secs(3600))
}

fn engine(mode: Mode) -> Engine {
    Engine::new(
        Registry::linked().expect("no duplicates"),
        EngineConfig::builder().mode(mode).build().unwrap(),
    )
}

fn json(v: serde_json::Value) -> JobSpec {
    let task = v["task"].as_str().unwrap().to_string();
    JobSpec::new(task).params(&v["params"]).unwrap()
}

#[test]
fn tasks_defined_with_the_macro_run_by_name() {
    let r = engine(Mode::Auto)
        .run([
            json(serde_json::json!({"task": "greet", "params": {"name": "yard", "excitement": 2}})),
            JobSpec::new("wait_a_bit"),
        ])
        .unwrap();
    assert_eq!(r.jobs[0].output.as_json(), r#""hello yard!!""#);
    assert_eq!(r.jobs[1].output.as_json(), "7");
    assert!(r.summary.all_succeeded());
}

#[test]
fn typed_jobs_run_like_jobs_by_name() {
    let greeting = Greeting {
        name: "yard".into(),
        excitement: 1,
    };
    let typed = greet::job(greeting).max_attempts(2);
    assert_eq!(typed.task, "greet");
    assert_eq!(typed.options.max_attempts, Some(2));
    let r = engine(Mode::Auto)
        .run([typed, wait_a_bit::job(()).priority(5)])
        .unwrap();
    assert_eq!(r.jobs[0].output.as_json(), r#""hello yard!""#);
    assert_eq!(r.jobs[1].output.as_json(), "7");
    // A hand-written task has the same constructor through its trait.
    assert_eq!(Dup::job(()).task, "greet");
}

#[test]
fn invalid_parameters_are_refused_before_anything_runs() {
    let e = engine(Mode::Auto)
        .run([
            JobSpec::new("wait_a_bit"),
            json(serde_json::json!({"task": "greet", "params": {"name": "yard", "excitement": 9}})),
        ])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid parameters for task `greet`: `excitement` must be <= 3, got 9"
    );
    let e = engine(Mode::Auto)
        .prepare(&json(
            serde_json::json!({"task": "greet", "params": {"name": ""}}),
        ))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid parameters for task `greet`: `name` must be at least 1 long, got \"\""
    );
}

#[test]
fn described_parameters_come_from_the_derive() {
    let reg = Registry::linked().unwrap();
    let s = reg.get("greet").unwrap().schema();
    let name = &s.fields[0];
    assert_eq!(
        (name.name.as_str(), name.ty.as_str(), name.required),
        ("name", "String", true)
    );
    assert_eq!(name.constraints, vec!["at least 1 long"]);
    assert_eq!(name.doc, "Who.");
    let ex = &s.fields[1];
    assert_eq!(
        (ex.required, ex.default.clone()),
        (false, Some(serde_json::json!(0)))
    );
    assert_eq!(reg.get("greet").unwrap().description(), "Greets.");
}

#[test]
fn a_task_limit_caps_its_attempts_at_once() {
    let r = engine(Mode::Auto)
        .run((0..12).map(|_| JobSpec::new("limited")))
        .unwrap();
    assert!(r.summary.all_succeeded());
    let most = MOST.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} ran at once");
}

#[test]
fn a_mode_that_cannot_run_a_task_is_refused_at_submit() {
    let e = engine(Mode::Thread)
        .run([JobSpec::new("forever"), JobSpec::new("wait_a_bit")])
        .unwrap_err();
    assert!(
        matches!(e, runyard::RunError::Submit(SubmitError::Mode(_))),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "task `wait_a_bit` cannot run in thread mode: it is an async task, which runs in `Mode::Async` or `Mode::Auto`"
    );
}

#[test]
fn retry_after_delays_the_next_attempt() {
    let r = engine(Mode::Auto).run([JobSpec::new("busy")]).unwrap();
    let a = &r.jobs[0].attempts;
    assert_eq!(a.len(), 2);
    let gap = a[1].started_at.since(a[0].started_at);
    assert!(gap >= Duration::from_millis(120), "{gap:?}");
    assert_eq!(r.jobs[0].state, JobState::Succeeded);
}

struct Collect(Mutex<Vec<(u64, String)>>);

impl EventSink for Collect {
    fn event(&self, e: &Event<'_>) {
        let v = serde_json::to_value(e).unwrap();
        let Some(job) = e.job() else { return };
        self.0
            .lock()
            .unwrap()
            .push((job.0, v["type"].as_str().unwrap().to_string()));
    }
}

#[test]
fn an_interrupted_run_cancels_what_never_ran_and_reports_it() {
    let e = engine(Mode::Auto);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let sink = Arc::new(Collect(Mutex::new(Vec::new())));
    let run = e
        .start_with_sinks(Arc::clone(&queue), vec![sink.clone() as Arc<dyn EventSink>])
        .unwrap();
    let first = run.submit(&JobSpec::new("forever")).unwrap();
    let later = run
        .submit(
            &JobSpec::new("greet")
                .params(&serde_json::json!({"name": "x"}))
                .unwrap()
                .run_at(queue.now() + Duration::from_secs(3600)),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sink
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(j, t)| *j == first.0 && t == "running")
    {
        assert!(Instant::now() < deadline, "the first job never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    run.interrupt();
    run.interrupt();
    let r = run.wait().unwrap();
    assert!(r.summary.interrupted);
    assert_eq!(r.jobs[0].state, JobState::Cancelled);
    assert_eq!(r.jobs[0].attempts[0].outcome, OutcomeKind::Cancelled);
    assert_eq!(r.jobs[1].id, later);
    assert_eq!(r.jobs[1].state, JobState::Cancelled);
    assert!(r.jobs[1].attempts.is_empty());
    let events = sink.0.lock().unwrap();
    let types: Vec<&str> = events
        .iter()
        .filter(|(j, _)| *j == first.0)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(types, ["queued", "running", "cancelled"]);
    assert_eq!(
        events
            .iter()
            .filter(|(j, t)| *j == later.0 && t == "cancelled")
            .count(),
        1
    );
}

/// `running` counts attempts that have started: with two threads, two
/// run and the jobs claimed ahead for them wait as `queued`.
#[test]
fn progress_counts_only_started_attempts_as_running() {
    for mode in [Mode::Thread, Mode::Auto] {
        let e = Engine::new(
            Registry::linked().expect("no duplicates"),
            EngineConfig::builder()
                .mode(mode)
                .concurrency(2)
                .build()
                .unwrap(),
        );
        let run = e.start(Arc::new(MemoryQueue::new())).unwrap();
        for _ in 0..10 {
            run.submit(&JobSpec::new("forever")).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let p = loop {
            let p = run.progress().unwrap();
            if p.counts.running == 2 {
                break p;
            }
            assert!(
                p.counts.running < 2 && Instant::now() < deadline,
                "{mode:?}: {:?}",
                p.counts
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!((p.counts.queued, p.counts.total()), (8, 10), "{mode:?}");
        run.interrupt();
        run.interrupt();
        assert!(run.wait().unwrap().summary.interrupted);
    }
}

struct Dup;

impl AsyncTask for Dup {
    const NAME: &'static str = "greet";
    type Params = ();
    type Output = ();

    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        Ok(())
    }
}

#[test]
fn a_registry_with_two_tasks_of_one_name_names_both() {
    let e = Registry::builder()
        .linked()
        .task(TaskDef::from_async(Dup))
        .build()
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("two tasks are named `greet`: "), "{msg}");
    assert!(
        msg.contains("tests/engine.rs:") && msg.contains("engine::Dup"),
        "{msg}"
    );
}
