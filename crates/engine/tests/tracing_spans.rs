//! The `runyard.attempt` spans and their events, as a subscriber of the
//! program's own sees them: jobs that succeed, fail then succeed, and time
//! out, each attempt a span with the job's id, task, attempt number, mode
//! and worker, and its outcome and duration recorded by its close.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runyard_core::{
    Backoff, Context, JobId, JobSpec, Mode, Registry, Task, TaskDef, TaskError, TaskKind,
};
use runyard_engine::{Engine, EngineConfig};
use runyard_queue::MemoryQueue;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A field's value as text (strings without quotes).
#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    target: String,
    fields: BTreeMap<String, String>,
    closed: bool,
}

#[derive(Debug, Clone)]
struct EventSeen {
    target: String,
    level: tracing::Level,
    /// The span named as the event's parent.
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    spans: HashMap<u64, SpanSeen>,
    events: Vec<EventSeen>,
}

/// Keeps every span (with its fields as recorded) and event.
#[derive(Clone, Default)]
struct Collector {
    seen: Arc<Mutex<Seen>>,
    next: Arc<AtomicU64>,
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::default();
        span.record(&mut fields);
        let meta = span.metadata();
        self.seen.lock().unwrap().spans.insert(
            id,
            SpanSeen {
                name: meta.name(),
                target: meta.target().into(),
                fields: fields.0,
                closed: false,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(s) = self.seen.lock().unwrap().spans.get_mut(&span.into_u64()) {
            s.fields.extend(fields.0);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        self.seen.lock().unwrap().events.push(EventSeen {
            target: meta.target().into(),
            level: *meta.level(),
            parent: event.parent().map(Id::into_u64),
            fields: fields.0,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn try_close(&self, id: Id) -> bool {
        if let Some(s) = self.seen.lock().unwrap().spans.get_mut(&id.into_u64()) {
            s.closed = true;
        }
        true
    }
}

struct Ok_;

impl Task for Ok_ {
    const NAME: &'static str = "ok";
    const KIND: TaskKind = TaskKind::Cpu;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Fails its first attempt, succeeds the next.
struct Flaky;

impl Task for Flaky {
    const NAME: &'static str = "flaky";
    const KIND: TaskKind = TaskKind::Cpu;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), ctx: &Context) -> Result<(), TaskError> {
        if ctx.attempt() == 1 {
            Err(TaskError::retryable("first attempts fail"))
        } else {
            Ok(())
        }
    }
}

/// Runs until it is stopped.
struct Forever;

impl Task for Forever {
    const NAME: &'static str = "forever";
    const KIND: TaskKind = TaskKind::Blocking;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), ctx: &Context) -> Result<(), TaskError> {
        loop {
            ctx.sleep(Duration::from_millis(5))?;
        }
    }
}

#[test]
fn each_attempt_is_a_span_with_its_job_task_attempt_and_outcome() {
    let collector = Collector::default();
    tracing::subscriber::set_global_default(collector.clone()).unwrap();

    let registry = Registry::builder()
        .task(TaskDef::from_task(Ok_))
        .task(TaskDef::from_task(Flaky))
        .task(TaskDef::from_task(Forever))
        .build()
        .unwrap();
    let config = EngineConfig::builder().mode(Mode::Auto).build().unwrap();
    let engine = Engine::new(registry, config);
    let run = engine.start(Arc::new(MemoryQueue::new())).unwrap();
    let ok = run.submit(&JobSpec::new("ok")).unwrap();
    let flaky = run
        .submit(&JobSpec::new("flaky").max_attempts(2).backoff(Backoff::None))
        .unwrap();
    let forever = run
        .submit(
            &JobSpec::new("forever")
                .max_attempts(1)
                .timeout(Duration::from_millis(20)),
        )
        .unwrap();
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 2);

    let seen = collector.seen.lock().unwrap();
    let attempts: Vec<(u64, &SpanSeen)> = seen
        .spans
        .iter()
        .filter(|(_, s)| s.name == "runyard.attempt")
        .map(|(id, s)| (*id, s))
        .collect();
    let span_of = |job: JobId, attempt: u32| {
        let found: Vec<_> = attempts
            .iter()
            .filter(|(_, s)| {
                s.fields["job"] == job.0.to_string() && s.fields["attempt"] == attempt.to_string()
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one span for job {job:?} attempt {attempt}: {attempts:#?}"
        );
        *found[0]
    };
    let expect = [
        (ok, "ok", 1, "succeeded", "thread"),
        (flaky, "flaky", 1, "failed", "thread"),
        (flaky, "flaky", 2, "succeeded", "thread"),
        (forever, "forever", 1, "timed_out", "blocking"),
    ];
    assert_eq!(attempts.len(), expect.len(), "{attempts:#?}");
    for (job, task, attempt, outcome, mode) in expect {
        let (id, s) = span_of(job, attempt);
        assert_eq!(s.target, "runyard::attempt");
        assert_eq!(s.fields["task"], task, "{s:?}");
        assert_eq!(s.fields["outcome"], outcome, "{s:?}");
        assert_eq!(s.fields["mode"], mode, "{s:?}");
        assert!(!s.fields["worker"].is_empty(), "{s:?}");
        let ms: f64 = s.fields["duration_ms"].parse().unwrap();
        assert!(ms >= 0.0, "{s:?}");
        assert!(
            s.closed,
            "the span closed once its record was written: {s:?}"
        );
        // Each span's events, in order, by message.
        let messages: Vec<&str> = seen
            .events
            .iter()
            .filter(|e| e.parent == Some(id))
            .map(|e| {
                assert_eq!(e.target, "runyard::attempt");
                assert_eq!(e.fields["job"], job.0.to_string(), "{e:?}");
                e.fields["message"].as_str()
            })
            .collect();
        let end: &[&str] = match (task, attempt) {
            ("flaky", 1) => &["retry scheduled"],
            ("forever", _) => &[
                "timed out: the attempt was stopped",
                "dead: no attempt left",
            ],
            _ => &["succeeded"],
        };
        assert_eq!(
            messages,
            [&["claimed", "started"][..], end].concat(),
            "{task} {attempt}"
        );
    }
    let retry = seen
        .events
        .iter()
        .find(|e| e.fields.get("message").map(String::as_str) == Some("retry scheduled"))
        .unwrap();
    assert_eq!(retry.level, tracing::Level::WARN);
    assert_eq!(retry.fields["outcome"], "failed");
    assert_eq!(retry.fields["error"], "first attempts fail");
    assert!(retry.fields.contains_key("delay_ms"), "{retry:?}");
    let claimed = seen
        .events
        .iter()
        .find(|e| e.fields.get("message").map(String::as_str) == Some("claimed"))
        .unwrap();
    assert_eq!(claimed.level, tracing::Level::DEBUG);
}
