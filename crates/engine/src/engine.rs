//! The engine and a run: submitting jobs, interrupting, waiting.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use runyard_core::{
    Event, JobId, JobOptions, JobSettings, JobSpec, OptionError, ParamError, QueuedReason,
    Registry, TaskIndex, UnknownTask,
};
use runyard_queue::{Counts, Enqueued, MemoryQueue, NewJob, Queue, QueueError, TaskName};
use thiserror::Error;

use crate::config::EngineConfig;
use crate::dispatcher::Dispatcher;
use crate::events::{EventSink, Events};
use crate::inbox::Inbox;
use crate::lane::{lane_for, Lane, ModeRefused};
use crate::report::Report;
pub use crate::shared::RunOutcome;
use crate::shared::{EngineInner, SettingsError, Tally};

/// A job that was refused before anything ran.
#[derive(Debug, Error)]
pub enum SubmitError {
    /// No task has that name.
    #[error(transparent)]
    UnknownTask(#[from] UnknownTask),
    /// The parameters were invalid.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// An option was invalid.
    #[error("job of task `{task}`: {error}")]
    Options {
        /// The task.
        task: String,
        /// What was wrong.
        error: OptionError,
    },
    /// The task cannot run in the mode asked for.
    #[error(transparent)]
    Mode(#[from] ModeRefused),
    /// The queue failed.
    #[error("the queue failed: {0}")]
    Queue(#[from] QueueError),
}

/// Runs jobs of a registry's tasks.
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("tasks", &self.inner.registry)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// An engine for `registry`. The configuration's job defaults are
    /// checked when jobs are submitted.
    pub fn new(registry: impl Into<Arc<Registry>>, config: EngineConfig) -> Engine {
        let registry = registry.into();
        let names: Vec<TaskName> = registry.iter().map(|t| t.task_name()).collect();
        let process_available = config.process.is_some();
        let mut inner = EngineInner {
            settings: Vec::new(),
            names,
            config,
            registry,
            process_available,
        };
        inner.settings = (0..inner.names.len())
            .map(|i| inner.resolve(TaskIndex(i as u32), &JobOptions::default()))
            .collect();
        Engine {
            inner: Arc::new(inner),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Checks a job and applies every default, without enqueueing it: an
    /// unknown task, invalid parameters or options, or a mode the task cannot
    /// run in are errors here, before anything runs.
    pub fn prepare(&self, spec: &JobSpec) -> Result<NewJob, SubmitError> {
        self.inner.prepare(spec)
    }

    /// Starts a run on `queue`: a dispatcher thread that claims and runs its
    /// jobs until [`Run::close`] has been called and none is left (or, for
    /// a worker that does not exit when drained, until interrupted).
    pub fn start(&self, queue: Arc<dyn Queue>, sinks: Vec<Arc<dyn EventSink>>) -> Run {
        let inbox = Arc::new(Inbox::default());
        let waker_inbox = Arc::clone(&inbox);
        queue.set_waker(Arc::new(move || waker_inbox.notify_work()));
        let events = Events::new(sinks);
        let tally = Arc::new(Tally::default());
        let dispatcher = Dispatcher::new(
            Arc::clone(&self.inner),
            Arc::clone(&queue),
            Arc::clone(&inbox),
            events.clone(),
            Arc::clone(&tally),
        );
        let thread = std::thread::Builder::new()
            .name("runyard-dispatch".to_string())
            .spawn(move || dispatcher.run())
            .expect("cannot start the dispatcher thread");
        Run {
            engine: Arc::clone(&self.inner),
            queue,
            inbox,
            events,
            tally,
            thread: Some(thread),
        }
    }

    /// Runs `specs` on a fresh in-memory queue and returns the report. Every
    /// job is checked before any runs.
    pub fn run(&self, specs: impl IntoIterator<Item = JobSpec>) -> Result<Report, SubmitError> {
        let jobs = specs
            .into_iter()
            .map(|s| self.prepare(&s))
            .collect::<Result<Vec<_>, _>>()?;
        let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
        let run = self.start(Arc::clone(&queue), Vec::new());
        run.submit_prepared(jobs)?;
        run.close();
        let out = run.wait();
        if let Some(e) = out.error {
            return Err(SubmitError::Queue(e));
        }
        Ok(Report::collect(&*queue, out.wall, out.interrupted)?)
    }
}

impl EngineInner {
    fn resolve(
        &self,
        task: TaskIndex,
        options: &JobOptions,
    ) -> Result<Arc<JobSettings>, SettingsError> {
        let def = self.registry.task(task);
        let o = options.or(&self.config.defaults);
        o.validate().map_err(SettingsError::Options)?;
        let policy = def.policy();
        let settings = JobSettings {
            max_attempts: o.max_attempts.unwrap_or(policy.max_attempts),
            backoff: o.backoff.unwrap_or(policy.backoff),
            timeout: o.timeout.or(def.timeout()),
            priority: o.priority.unwrap_or(0),
            mode: o.mode.unwrap_or(self.config.mode),
            isolate: o.isolate.unwrap_or(def.isolate()),
        };
        // The task's own defaults are held to the bounds of a job's options.
        JobOptions {
            max_attempts: Some(settings.max_attempts),
            backoff: Some(settings.backoff),
            timeout: settings.timeout,
            ..JobOptions::default()
        }
        .validate()
        .map_err(SettingsError::Options)?;
        let lane = lane_for(settings.mode, def, settings.isolate).map_err(SettingsError::Mode)?;
        if lane == Lane::Process && !self.process_available {
            return Err(SettingsError::Mode(ModeRefused {
                task: def.name().to_string(),
                mode: settings.mode,
                reason: "no worker processes are configured (the engine needs a ProcessConfig)"
                    .to_string(),
            }));
        }
        Ok(Arc::new(settings))
    }

    pub(crate) fn prepare(&self, spec: &JobSpec) -> Result<NewJob, SubmitError> {
        let idx = self.registry.lookup(&spec.task)?;
        let def = self.registry.task(idx);
        def.validate_params(&spec.params)?;
        let own = &spec.options;
        let settings = if own.max_attempts.is_none()
            && own.backoff.is_none()
            && own.timeout.is_none()
            && own.priority.is_none()
            && own.mode.is_none()
            && own.isolate.is_none()
        {
            self.settings[idx.0 as usize].clone()
        } else {
            self.resolve(idx, own)
        };
        let settings = settings.map_err(|e| match e {
            SettingsError::Options(error) => SubmitError::Options {
                task: def.name().to_string(),
                error,
            },
            SettingsError::Mode(m) => SubmitError::Mode(m),
        })?;
        let o = own.or(&self.config.defaults);
        Ok(NewJob {
            task: self.names[idx.0 as usize].clone(),
            params: spec.params.clone(),
            settings,
            run_at: o.run_at,
            idempotency_key: o.idempotency_key,
        })
    }
}

/// A run in progress. Dropping it without [`Run::wait`] interrupts it and
/// waits for the dispatcher.
pub struct Run {
    engine: Arc<EngineInner>,
    queue: Arc<dyn Queue>,
    inbox: Arc<Inbox>,
    events: Events,
    tally: Arc<Tally>,
    thread: Option<JoinHandle<RunOutcome>>,
}

impl Tally {
    fn progress(&self, queue: &dyn Queue) -> Result<Progress, QueueError> {
        let mut counts = queue.counts()?;
        if !queue.is_durable() {
            // An in-memory queue is not told when attempts start (it costs
            // the dispatch path, and only this process reads the queue): it
            // counts every claim queued, and the executors say which of them
            // run. Read after the counts, an attempt started since is one
            // the counts hold as queued.
            let running: usize = self
                .executors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|e| e.running())
                .sum();
            let running = (running as u64).min(counts.queued);
            counts.queued -= running;
            counts.running += running;
        }
        Ok(Progress {
            counts,
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
        })
    }
}

/// A run's counts, for a progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Jobs per state; `running` counts attempts that have started, a job
    /// claimed and waiting for its turn is `queued`.
    pub counts: Counts,
    /// Attempts that did not succeed so far.
    pub failed_attempts: u64,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// Checks and enqueues one job.
    pub fn submit(&self, spec: &JobSpec) -> Result<JobId, SubmitError> {
        let job = self.engine.prepare(spec)?;
        Ok(self.submit_one(job)?.id())
    }

    fn submit_one(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        if self.events.is_empty() {
            return self.queue.enqueue_one(job);
        }
        let task = job.task.clone();
        let _order = self.events.lock();
        let e = self.queue.enqueue_one(job)?;
        if let Enqueued::New(id) = e {
            self.emit_queued(id, &task);
        }
        Ok(e)
    }

    fn emit_queued(&self, job: JobId, task: &str) {
        self.events.emit(&Event::Queued {
            job,
            task,
            at: self.queue.now(),
            reason: QueuedReason::Submitted,
        });
    }

    /// Enqueues jobs checked with [`Engine::prepare`], in one batch.
    pub fn submit_prepared(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        if self.events.is_empty() {
            return self.queue.enqueue(jobs);
        }
        let tasks: Vec<TaskName> = jobs.iter().map(|j| j.task.clone()).collect();
        let _order = self.events.lock();
        let out = self.queue.enqueue(jobs)?;
        for (e, task) in out.iter().zip(&tasks) {
            if let Enqueued::New(id) = e {
                self.emit_queued(*id, task);
            }
        }
        Ok(out)
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

    /// Waits for the run to end.
    pub fn wait(mut self) -> RunOutcome {
        self.join()
    }

    fn join(&mut self) -> RunOutcome {
        let out = match self.thread.take() {
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
        self.events.flush();
        out
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.inbox.interrupt();
            self.inbox.interrupt();
            let _ = self.join();
        }
    }
}
