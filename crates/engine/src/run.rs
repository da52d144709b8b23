//! A run: a dispatcher thread draining one queue, and the handle that
//! submits to it, interrupts it and waits for its end, from blocking or
//! async code.
//!
//! How a run ends: [`Run::close`] says no more jobs will be submitted, and
//! the dispatcher ends once the queue has none left to run (a worker's
//! run never ends so: it drains until interrupted). [`Run::interrupt`]
//! stops claiming and gives running attempts the grace period; a second
//! cancels them. When the dispatcher ends, its thread drops the run's
//! `ended` sender: async waits (a worker's shutdown) watch for that. The
//! run's report is then read from the queue: [`Run::wait`] reads it whole,
//! [`Run::join`] gives a [`ReportReader`] that reads it a page at a time;
//! [`Run::finish`] does the same as `wait` from async code, with every
//! blocking call on the run's offload thread (see `offload.rs`).
//!
//! The async lane runs on a tokio runtime of the engine's own, started by
//! the dispatcher with the first async attempt, never on the caller's: the
//! dispatcher hands attempts from its own thread, a caller's
//! `current_thread` runtime would run every attempt on the one thread that
//! also serves the caller, and a run of 100,000 sleeps must not compete
//! with a service's handlers for its runtime's threads.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use runyard_core::{Event, JobId, JobSpec, JobState, QueuedReason};
use runyard_queue::{Enqueued, MemoryQueue, NewJob, Queue, QueueError, TaskName};
use tokio::sync::oneshot;

use crate::config::RunSettings;
use crate::dispatcher::Dispatcher;
use crate::engine::{Engine, Progress};
use crate::error::{RunError, StartError, SubmitError};
use crate::events::{EventSink, Events, Meter, Meters};
use crate::firing::Firing;
use crate::inbox::Inbox;
use crate::offload::Offload;
use crate::report::{Report, ReportReader};
use crate::shared::{EngineInner, RunOutcome, Tally};
use crate::workflow::{Workflow, WorkflowIds};

impl Engine {
    /// Starts a run on `queue`: a dispatcher thread that claims and runs its
    /// jobs until [`Run::close`] has been called and none is left.
    pub fn start(&self, queue: Arc<dyn Queue>) -> Result<Run, StartError> {
        self.start_with_sinks(queue, Vec::new())
    }

    /// Starts a run on `queue` whose events go to `sinks`.
    pub fn start_with_sinks(
        &self,
        queue: Arc<dyn Queue>,
        sinks: Vec<Arc<dyn EventSink>>,
    ) -> Result<Run, StartError> {
        Run::start(
            Arc::clone(self.inner()),
            RunSettings::run(),
            queue,
            sinks,
            dispatcher_thread(),
        )
    }

    /// [`Engine::start_with_sinks`], its own work counted by `meter` (as a
    /// worker's is with [`Worker::meter`](crate::Worker::meter)).
    pub fn start_metered(
        &self,
        queue: Arc<dyn Queue>,
        sinks: Vec<Arc<dyn EventSink>>,
        meter: Arc<dyn Meter>,
    ) -> Result<Run, StartError> {
        let settings = RunSettings {
            meter: Meters::new(Some(meter)),
            ..RunSettings::run()
        };
        Run::start(
            Arc::clone(self.inner()),
            settings,
            queue,
            sinks,
            dispatcher_thread(),
        )
    }

    /// Runs `specs` on a fresh in-memory queue and returns the report. Every
    /// job is checked before any runs.
    pub fn run(&self, specs: impl IntoIterator<Item = JobSpec>) -> Result<Report, RunError> {
        if let Some(u) = &self.inner().unknown_limit {
            return Err(StartError::limits(u.clone()).into());
        }
        let jobs = specs
            .into_iter()
            .map(|s| self.prepare(&s))
            .collect::<Result<Vec<_>, _>>()?;
        let run = self.start(Arc::new(MemoryQueue::new()))?;
        run.submit_prepared(jobs).map_err(SubmitError::Queue)?;
        run.close();
        run.wait()
    }
}

/// The dispatcher's thread.
pub(crate) fn dispatcher_thread() -> std::thread::Builder {
    std::thread::Builder::new().name("runyard-dispatch".to_string())
}

/// A run in progress. Dropping it without waiting for it interrupts it
/// (twice: running attempts are cancelled); from blocking code the drop
/// waits for the dispatcher, within a tokio runtime it leaves that wait to
/// the run's offload thread.
///
/// Its methods take `&self`: share it (in an `Arc`) between the tasks of a
/// service that submit to it.
pub struct Run {
    engine: Arc<EngineInner>,
    queue: Arc<dyn Queue>,
    inbox: Arc<Inbox>,
    events: Events,
    tally: Arc<Tally>,
    thread: Option<JoinHandle<RunOutcome>>,
    /// Resolves (with an error: its sender is dropped) once the dispatcher
    /// has ended.
    ended: Option<oneshot::Receiver<()>>,
    offload: Offload,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Run {
    pub(crate) fn start(
        engine: Arc<EngineInner>,
        settings: RunSettings,
        queue: Arc<dyn Queue>,
        sinks: Vec<Arc<dyn EventSink>>,
        thread: std::thread::Builder,
    ) -> Result<Run, StartError> {
        if let Some(u) = &engine.unknown_limit {
            return Err(StartError::limits(u.clone()));
        }
        let inbox = Arc::new(Inbox::default());
        let events = Events::new(sinks);
        let settings_fire = settings.fire_schedules;
        let meter = settings.meter.clone();
        let tally = Arc::new(Tally::default());
        let dispatcher = Dispatcher::new(
            Arc::clone(&engine),
            settings,
            Arc::clone(&queue),
            Arc::clone(&inbox),
            events.clone(),
            Arc::clone(&tally),
        );
        let (ended_tx, ended) = oneshot::channel::<()>();
        let firing = settings_fire.then(|| {
            (
                Arc::clone(&queue),
                events.clone(),
                Arc::clone(&inbox),
                meter,
            )
        });
        let thread = thread
            .spawn(move || {
                let _ended = ended_tx;
                // Fires while the dispatcher runs; stopped before the run's
                // end is announced.
                let _firing = firing.and_then(|(queue, events, inbox, meter)| {
                    Firing::start(queue, events, inbox, meter)
                });
                dispatcher.run()
            })
            .map_err(StartError::new)?;
        let waker_inbox = Arc::clone(&inbox);
        queue.set_waker(Arc::new(move || waker_inbox.notify_work()));
        Ok(Run {
            engine,
            queue,
            inbox,
            events,
            tally,
            thread: Some(thread),
            ended: Some(ended),
            offload: Offload::default(),
        })
    }

    /// Checks and enqueues one job.
    pub fn submit(&self, spec: &JobSpec) -> Result<JobId, SubmitError> {
        let job = self.engine.prepare(spec)?;
        Ok(enqueue_one(&*self.queue, &self.events, job)?.id())
    }

    /// Enqueues jobs checked with [`Engine::prepare`], in one batch.
    pub fn submit_prepared(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        enqueue(&*self.queue, &self.events, jobs)
    }

    /// [`Run::submit`] from async code: the job is checked here, and
    /// enqueued on the run's offload thread, so that no thread of the
    /// caller's runtime waits for the queue.
    pub async fn submit_async(&self, spec: &JobSpec) -> Result<JobId, SubmitError> {
        let job = self.engine.prepare(spec)?;
        let (queue, events) = (Arc::clone(&self.queue), self.events.clone());
        let e = self
            .offloaded(move || enqueue_one(&*queue, &events, job))
            .await?;
        Ok(e.id())
    }

    /// Checks a workflow and every job of it, then enqueues it in one batch
    /// (nothing when anything is refused); the ids of each step's jobs. See
    /// [`Workflow`].
    pub fn submit_workflow(&self, workflow: &Workflow) -> Result<WorkflowIds, SubmitError> {
        let (jobs, layout) = workflow.prepare(|s| self.engine.prepare(s))?;
        let enqueued = enqueue(&*self.queue, &self.events, jobs)?;
        Ok(layout.ids(&enqueued))
    }

    /// [`Run::submit_workflow`] from async code: the workflow is checked
    /// here, and enqueued on the run's offload thread (see
    /// [`Run::submit_async`]).
    pub fn submit_workflow_async(
        &self,
        workflow: &Workflow,
    ) -> impl Future<Output = Result<WorkflowIds, SubmitError>> + Send + 'static {
        let prepared = workflow.prepare(|s| self.engine.prepare(s));
        let (queue, events) = (Arc::clone(&self.queue), self.events.clone());
        let call = prepared.map(|(jobs, layout)| {
            let enqueued = self.offloaded(move || enqueue(&*queue, &events, jobs));
            (enqueued, layout)
        });
        async move {
            let (enqueued, layout) = call?;
            Ok(layout.ids(&enqueued.await?))
        }
    }

    /// [`Run::submit_prepared`] from async code (see [`Run::submit_async`]).
    pub async fn submit_prepared_async(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let (queue, events) = (Arc::clone(&self.queue), self.events.clone());
        self.offloaded(move || enqueue(&*queue, &events, jobs))
            .await
    }

    /// Runs `f` on the offload thread and waits for its result without
    /// blocking.
    fn offloaded<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let rx = self.offload.call(f);
        async move {
            match rx.await {
                Ok(t) => t,
                Err(_) => panic!("a call on the run's offload thread panicked"),
            }
        }
    }

    /// No more jobs will be submitted: the run ends when the queue has none
    /// left to run.
    pub fn close(&self) {
        self.inbox.close();
    }

    /// The first call stops claiming jobs and gives running attempts the
    /// grace period to finish; the second cancels them at once.
    pub fn interrupt(&self) {
        self.inbox.interrupt();
    }

    /// A handle that interrupts this run from another thread (a signal handler).
    pub fn interrupter(&self) -> impl Fn() + Send + Sync + 'static {
        let inbox = Arc::clone(&self.inbox);
        move || inbox.interrupt()
    }

    /// Whether the dispatcher has ended (drained after [`Run::close`],
    /// interrupted, or stopped by a failure of the queue): a caller that
    /// waits for the run to make room stops waiting then.
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// Counts so far.
    pub fn progress(&self) -> Result<Progress, QueueError> {
        self.tally.progress(&*self.queue)
    }

    /// A function that reads the run's counts, for a progress display on
    /// another thread.
    pub fn progress_source(
        &self,
    ) -> impl Fn() -> Result<Progress, QueueError> + Send + Sync + 'static {
        let queue = Arc::clone(&self.queue);
        let tally = Arc::clone(&self.tally);
        move || tally.progress(&*queue)
    }

    /// Waits for the run to end and reads its report (every job, in
    /// memory; for a large run, [`Run::join`] reads it a page at a time).
    pub fn wait(self) -> Result<Report, RunError> {
        self.join()?.report().map_err(RunError::Report)
    }

    /// Waits for the run to end; the [`ReportReader`] reads its report.
    /// A run the queue stopped early is an error that still holds what
    /// the queue recorded ([`RunError::stopped_run`]).
    pub fn join(mut self) -> Result<ReportReader, RunError> {
        let thread = self.thread.take();
        end(thread, &self.events, &self.queue)
    }

    /// [`Run::close`], then [`Run::wait`] from async code: the dispatcher's
    /// end is awaited without blocking, and joining it and reading the
    /// report run on the run's offload thread. (A worker's run does not end
    /// when drained: interrupt it first, or use [`Worker::run`](crate::Worker::run).)
    pub async fn finish(self) -> Result<Report, RunError> {
        self.close();
        self.join_then(|r| r.report().map_err(RunError::Report))
            .await
    }

    /// [`Run::join`] from async code (see [`Run::finish`]).
    pub async fn join_async(self) -> Result<ReportReader, RunError> {
        self.join_then(Ok).await
    }

    async fn join_then<T: Send + 'static>(
        mut self,
        then: impl FnOnce(ReportReader) -> Result<T, RunError> + Send + 'static,
    ) -> Result<T, RunError> {
        if let Some(ended) = self.ended.take() {
            let _ = ended.await;
        }
        let thread = self.thread.take();
        let (events, queue) = (self.events.clone(), Arc::clone(&self.queue));
        self.offloaded(move || end(thread, &events, &queue).and_then(then))
            .await
    }

    /// Waits without blocking until the dispatcher has ended (the queue
    /// failed, or the run was interrupted or drained) or `shutdown`
    /// resolves; returns whether it had ended.
    pub(crate) async fn ended_or(&mut self, shutdown: impl Future<Output = ()>) -> bool {
        let Some(mut ended) = self.ended.take() else {
            return true;
        };
        let mut shutdown = std::pin::pin!(shutdown);
        let dispatcher_ended = std::future::poll_fn(|cx| {
            if std::pin::Pin::new(&mut ended).poll(cx).is_ready() {
                return std::task::Poll::Ready(true);
            }
            shutdown.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if !dispatcher_ended {
            self.ended = Some(ended);
        }
        dispatcher_ended
    }
}

/// Joins the dispatcher (if it has not been joined) and flushes the sinks.
fn end(
    thread: Option<JoinHandle<RunOutcome>>,
    events: &Events,
    queue: &Arc<dyn Queue>,
) -> Result<ReportReader, RunError> {
    let out = match thread {
        Some(t) => match t.join() {
            Ok(out) => out,
            Err(p) => std::panic::resume_unwind(p),
        },
        None => RunOutcome {
            wall: Duration::ZERO,
            interrupted: false,
            error: None,
        },
    };
    events.flush();
    let run = ReportReader::new(Arc::clone(queue), out.wall, out.interrupted);
    match out.error {
        Some(error) => Err(RunError::Stopped {
            error,
            run: Box::new(run),
        }),
        None => Ok(run),
    }
}

fn enqueue_one(queue: &dyn Queue, events: &Events, job: NewJob) -> Result<Enqueued, QueueError> {
    if events.is_empty() {
        return queue.enqueue_one(job);
    }
    let task = job.task.clone();
    let after = !job.after.is_empty();
    let _order = events.lock();
    let e = queue.enqueue_one(job)?;
    if let Enqueued::New(id) = e {
        emit_submitted(queue, events, id, &task, after);
    }
    Ok(e)
}

fn enqueue(
    queue: &dyn Queue,
    events: &Events,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, QueueError> {
    if events.is_empty() {
        return queue.enqueue(jobs);
    }
    let tasks: Vec<(TaskName, bool)> = jobs
        .iter()
        .map(|j| (j.task.clone(), !j.after.is_empty()))
        .collect();
    let _order = events.lock();
    let out = queue.enqueue(jobs)?;
    for (e, (task, after)) in out.iter().zip(&tasks) {
        if let Enqueued::New(id) = e {
            emit_submitted(queue, events, *id, task, *after);
        }
    }
    Ok(out)
}

/// The event of a job just submitted: `queued`; for a job with parents, the
/// state the queue put it in: `blocked`, `queued` (its parents had all
/// ended as it needs), or `cancelled` naming the cause (one had already
/// ended dead or cancelled). Only jobs with parents are read back.
fn emit_submitted(queue: &dyn Queue, events: &Events, job: JobId, task: &str, after: bool) {
    let at = queue.now();
    let view = if after {
        queue.inspect().and_then(|q| q.get(job)).ok().flatten()
    } else {
        None
    };
    match view {
        Some(v) if v.state == JobState::Blocked => {
            events.emit(&Event::Blocked {
                job,
                task,
                at,
                schedule: None,
            });
        }
        Some(v) if v.state == JobState::Cancelled => {
            events.emit(&Event::Cancelled {
                job,
                task,
                at,
                attempts: v.attempts.len() as u32,
                cancelled_by: v.cancelled_by.as_deref(),
                schedule: None,
            });
        }
        _ => events.emit(&Event::Queued {
            job,
            task,
            at,
            reason: QueuedReason::Submitted,
            schedule: None,
        }),
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.inbox.interrupt();
            self.inbox.interrupt();
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = end(Some(thread), &self.events, &self.queue);
            } else {
                // Joined and flushed on the offload thread, which ends
                // once it has (the run's handle to it goes with the run).
                let (events, queue) = (self.events.clone(), Arc::clone(&self.queue));
                drop(self.offload.call(move || {
                    let _ = end(Some(thread), &events, &queue);
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use runyard_core::Registry;
    use runyard_queue::MemoryQueue;

    use super::*;
    use crate::config::EngineConfig;

    #[test]
    fn a_dispatcher_thread_that_cannot_start_is_an_error_not_a_panic() {
        let engine = Engine::new(
            Registry::builder().build().unwrap(),
            EngineConfig::default(),
        );
        // No process can give a thread a stack of a petabyte.
        let thread = dispatcher_thread().stack_size(1 << 50);
        let e = Run::start(
            Arc::clone(engine.inner()),
            RunSettings::run(),
            Arc::new(MemoryQueue::new()),
            Vec::new(),
            thread,
        )
        .unwrap_err();
        assert!(std::error::Error::source(&e).is_some());
    }
}
