//! A worker: a long-lived run under a name that drains a shared queue
//! until it is shut down, from blocking code ([`Worker::start`], then
//! [`Run::interrupt`] on a signal) or inside the caller's tokio runtime
//! ([`Worker::run`] with a shutdown future).
//!
//! Unlike a run, a worker does not end when the queue is empty: it waits
//! for jobs that others enqueue, and rides out a queue it cannot reach for
//! a while. Leases are held under its name, unique among live workers.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use runyard_queue::{PublishedTask, Queue};

use crate::config::{default_worker_name, RunSettings};
use crate::engine::Engine;
use crate::error::{RunError, StartError};
use crate::events::{EventSink, Meter, Meters};
use crate::run::{dispatcher_thread, Run};
use crate::shared::EngineInner;

impl Engine {
    /// A worker draining `queue` with this engine's configuration, named
    /// `host:pid` unless [`Worker::name`] says otherwise.
    pub fn worker(&self, queue: Arc<dyn Queue>) -> Worker {
        Worker {
            engine: Arc::clone(self.inner()),
            queue,
            name: default_worker_name(),
            sinks: Vec::new(),
            schedules: self.inner().config.schedules,
            meter: None,
        }
    }
}

/// A worker about to start: [`Engine::worker`].
///
/// ```
/// use std::sync::Arc;
/// use runyard_core::Registry;
/// use runyard_engine::{Engine, EngineConfig};
/// use runyard_queue::MemoryQueue;
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # runtime.block_on(async {
/// let engine = Engine::new(Registry::builder().build().unwrap(), EngineConfig::default());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let worker = engine.worker(Arc::new(MemoryQueue::new())).name("a");
/// // In a service: spawned at start-up, stopped by its shutdown signal.
/// let worker = tokio::spawn(worker.run(async move {
///     let _ = stopped.await;
/// }));
/// stop.send(()).unwrap();
/// worker.await.unwrap().unwrap();
/// # });
/// ```
#[must_use = "a worker does nothing until it is started"]
pub struct Worker {
    engine: Arc<EngineInner>,
    queue: Arc<dyn Queue>,
    name: String,
    sinks: Vec<Arc<dyn EventSink>>,
    schedules: bool,
    meter: Option<Arc<dyn Meter>>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue)
            .field("name", &self.name)
            .field("schedules", &self.schedules)
            .field("meter", &self.meter.is_some())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// The worker's name in the queue: its leases are held under it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The name it will run under.
    pub fn worker_name(&self) -> &str {
        &self.name
    }

    /// Whether the worker fires the due ticks of the schedules its queue
    /// keeps (default: the engine's
    /// [`EngineConfigBuilder::schedules`](crate::EngineConfigBuilder::schedules),
    /// on unless turned off). Every worker of a queue may fire them: each
    /// tick makes one submission however many do. A worker that fires
    /// calls [`Schedules::fire_due`](runyard_queue::Schedules::fire_due) at
    /// each schedule's next tick, and at least once a second (schedules
    /// added meanwhile are seen within a second); their events (`fired`,
    /// `skipped`, `missed`) go to its sinks. It stops firing at its first
    /// interrupt.
    pub fn schedules(mut self, on: bool) -> Self {
        self.schedules = on;
        self
    }

    /// Sends the worker's events to `sink` too.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Sends the worker's events to each of `sinks` too.
    pub fn sinks(mut self, sinks: impl IntoIterator<Item = Arc<dyn EventSink>>) -> Self {
        self.sinks.extend(sinks);
        self
    }

    /// Counts the worker's own work with `meter`: its claims, the attempts
    /// it runs, the leases it rescues or loses, the ticks it fires (see
    /// [`Meter`]). One meter per worker: nothing another worker does is
    /// counted in it.
    pub fn meter(mut self, meter: Arc<dyn Meter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Starts draining, for blocking code: the run ends once interrupted
    /// ([`Run::interrupt`]: the first call drains gracefully, the second
    /// cancels), or when the queue fails for good. First the worker
    /// publishes the tasks it claims to the queue, each with the settings
    /// this engine gives a job of it that names no option
    /// ([`Queue::publish_tasks`]): a queue that cannot record them is an
    /// error here.
    pub fn start(self) -> Result<Run, StartError> {
        if let Some(u) = &self.engine.unknown_limit {
            return Err(StartError::limits(u.clone()));
        }
        self.queue
            .publish_tasks(&self.name, &published(&self.engine))
            .map_err(StartError::publish)?;
        Run::start(
            self.engine,
            RunSettings {
                worker_name: self.name,
                exit_when_drained: false,
                fire_schedules: self.schedules,
                meter: Meters::new(self.meter),
            },
            self.queue,
            self.sinks,
            dispatcher_thread(),
        )
    }

    /// Drains the queue until `shutdown` resolves, then drains gracefully
    /// as an interrupt does (no more claims; running attempts get the
    /// grace period, the rest go back to the queue), and returns once the
    /// dispatcher has ended. Nothing here blocks a thread of the caller's
    /// runtime: the dispatcher runs on a thread of its own, and its end is
    /// awaited through a channel.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let mut run = self.start()?;
        if !run.ended_or(shutdown).await {
            run.interrupt();
        }
        run.join_async().await.map(drop)
    }
}

/// The tasks this engine claims whose settings resolve, as a worker
/// publishes them.
fn published(engine: &EngineInner) -> Vec<PublishedTask> {
    let claimed = engine.config.tasks.as_deref();
    engine
        .names
        .iter()
        .zip(&engine.settings)
        .zip(&engine.defaults)
        .filter(|((name, _), _)| claimed.is_none_or(|t| t.contains(name)))
        .filter_map(|((name, settings), d)| {
            Some(PublishedTask {
                task: name.clone(),
                settings: Arc::clone(settings.as_ref().ok()?),
                concurrency: d.queue_concurrency,
                rate: d.rate,
            })
        })
        .collect()
}
