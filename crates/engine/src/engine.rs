//! The engine: a registry and a configuration, and what every run of it
//! shares (the tasks' settings under the run-wide defaults, the counts a
//! progress display reads). Runs are started in `run.rs`, workers in
//! `worker.rs`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use runyard_core::{JobOptions, JobSettings, JobSpec, Registry, TaskIndex};
use runyard_queue::{Counts, Durability, NewJob, Queue, QueueError, TaskName};

use crate::config::EngineConfig;
use crate::error::SubmitError;
use crate::lane::{lane_for, Lane, ModeRefused};
use crate::shared::{EngineInner, SettingsError, Tally};
use crate::workflow::{Workflow, WorkflowIds};

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
    ///
    /// ```
    /// use runyard_core::{Mode, Registry};
    /// use runyard_engine::{Engine, EngineConfig};
    ///
    /// let config = EngineConfig::builder().mode(Mode::Thread).concurrency(2).build()?;
    /// let engine = Engine::new(Registry::builder().build()?, config);
    /// assert_eq!(engine.config().concurrency(), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(registry: impl Into<Arc<Registry>>, config: EngineConfig) -> Engine {
        let registry = registry.into();
        let names: Vec<TaskName> = registry.iter().map(|t| t.task_name()).collect();
        let process_available = config.process.is_some();
        let unknown_limit = config
            .task_limits
            .keys()
            .find_map(|t| registry.lookup(t).err());
        // Each task's defaults, with the run's limits for it in place.
        let defaults = registry
            .iter()
            .map(|t| {
                let mut d = *t.defaults();
                let run = config
                    .task_limits
                    .get(t.name())
                    .copied()
                    .unwrap_or_default();
                d.queue_concurrency = run.concurrency.or(d.queue_concurrency);
                d.rate = run.rate.or(d.rate);
                d
            })
            .collect();
        let mut inner = EngineInner {
            settings: Vec::new(),
            names,
            config,
            registry,
            process_available,
            defaults,
            unknown_limit,
        };
        inner.settings = (0..inner.names.len())
            .map(|i| {
                let task = TaskIndex(i as u32);
                let o = JobOptions::default().or(&inner.config.defaults);
                o.validate().map_err(SettingsError::Options)?;
                let applied = o.over(&inner.defaults[i], inner.config.mode);
                inner.check_settings(task, applied.settings).map(Arc::new)
            })
            .collect();
        Engine {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<EngineInner> {
        &self.inner
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Whether the attempts of `job` (checked with [`Engine::prepare`]) run
    /// in child processes: in `process` mode, or isolated in `auto` mode.
    /// Settings for child processes apply to those jobs only.
    pub fn runs_in_child_processes(&self, job: &NewJob) -> bool {
        let s = &job.settings;
        self.inner.registry.lookup(&job.task).is_ok_and(|i| {
            lane_for(s.mode, self.inner.registry.task(i), s.isolate) == Ok(Lane::Process)
        })
    }

    /// Checks that the configuration's task limits
    /// ([`EngineConfigBuilder::task_limits`](crate::EngineConfigBuilder::task_limits))
    /// are all for tasks of the registry; a run does not start otherwise.
    pub fn check_task_limits(&self) -> Result<(), runyard_core::UnknownTask> {
        match &self.inner.unknown_limit {
            Some(u) => Err(u.clone()),
            None => Ok(()),
        }
    }

    /// Checks a job and applies every default, without enqueueing it: an
    /// unknown task, invalid parameters or options, or a mode the task cannot
    /// run in are errors here, before anything runs.
    pub fn prepare(&self, spec: &JobSpec) -> Result<NewJob, SubmitError> {
        self.inner.prepare(spec)
    }

    /// Checks every job of a workflow (as [`Engine::prepare`] does) and the
    /// workflow itself, then enqueues it in one batch to `queue`, without a
    /// run: for a durable queue that workers drain. Nothing is enqueued
    /// when anything is refused. The queue must keep dependencies
    /// ([`Capability::Dependencies`](runyard_queue::Capability)) for a
    /// workflow with edges.
    pub fn enqueue_workflow(
        &self,
        queue: &dyn Queue,
        workflow: &Workflow,
    ) -> Result<WorkflowIds, SubmitError> {
        let (jobs, layout) = workflow.prepare(|s| self.inner.prepare(s))?;
        let enqueued = queue.enqueue(jobs)?;
        Ok(layout.ids(&enqueued))
    }
}

impl EngineInner {
    /// Checks a job's settings: the task's own defaults are held to the
    /// bounds of a job's options, and its mode must have a lane here.
    fn check_settings(
        &self,
        task: TaskIndex,
        settings: JobSettings,
    ) -> Result<JobSettings, SettingsError> {
        let def = self.registry.task(task);
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
        Ok(settings)
    }

    pub(crate) fn prepare(&self, spec: &JobSpec) -> Result<NewJob, SubmitError> {
        let idx = self.registry.lookup(&spec.task)?;
        let def = self.registry.task(idx);
        def.validate_params(&spec.params)?;
        let refused = |e| match e {
            SettingsError::Options(error) => SubmitError::Options {
                task: def.name().to_string(),
                error,
            },
            SettingsError::Mode(m) => SubmitError::Mode(m),
        };
        let o = spec.options.or(&self.config.defaults);
        o.validate()
            .map_err(|e| refused(SettingsError::Options(e)))?;
        let applied = o.over(&self.defaults[idx.0 as usize], self.config.mode);
        // The task's settings, checked once, serve every job that ends up
        // with the same.
        let settings = match &self.settings[idx.0 as usize] {
            Ok(s) if **s == applied.settings => Arc::clone(s),
            _ => Arc::new(
                self.check_settings(idx, applied.settings)
                    .map_err(refused)?,
            ),
        };
        Ok(NewJob {
            schedule: None,
            unique: applied.unique,
            limits: applied.limits,
            task: self.names[idx.0 as usize].clone(),
            params: spec.params.clone(),
            settings,
            run_at: applied.run_at,
            idempotency_key: applied.idempotency_key,
            name: None,
            after: Vec::new(),
            run_if: runyard_core::RunIf::Success,
        })
    }
}

impl Tally {
    pub(crate) fn progress(&self, queue: &dyn Queue) -> Result<Progress, QueueError> {
        let mut counts = queue.counts()?;
        if queue.capabilities().durability() == Durability::Process {
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
#[non_exhaustive]
pub struct Progress {
    /// Jobs per state; `running` counts attempts that have started, a job
    /// claimed and waiting for its turn is `queued`.
    pub counts: Counts,
    /// Attempts that did not succeed so far.
    pub failed_attempts: u64,
}
