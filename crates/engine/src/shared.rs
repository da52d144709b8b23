//! What the engine and its dispatcher share: the engine's state (registry,
//! configuration, per-task settings), a run's [`Tally`] of progress, and the
//! [`RunOutcome`] a dispatcher hands back when its run ends.
//!
//! The engine builds these and the dispatcher reads them; neither module
//! imports the other.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runyard_core::{JobSettings, OptionError, Registry, TaskDefaults, UnknownTask};
use runyard_exec::Executor;
use runyard_queue::{QueueError, TaskName};

use crate::config::EngineConfig;
use crate::lane::ModeRefused;

pub(crate) struct EngineInner {
    pub(crate) registry: Arc<Registry>,
    pub(crate) config: EngineConfig,
    /// Task names by index, shared by every job of the task.
    pub(crate) names: Vec<TaskName>,
    /// Per task: its settings under the run's defaults alone.
    pub(crate) settings: Vec<Result<Arc<JobSettings>, SettingsError>>,
    /// Which lanes can run here.
    pub(crate) process_available: bool,
    /// Per task: its defaults, with the run's limits across the queue
    /// for it in place of its own.
    pub(crate) defaults: Vec<TaskDefaults>,
    /// A task of the configuration's limits that the registry lacks: no
    /// run starts.
    pub(crate) unknown_limit: Option<UnknownTask>,
}

/// Why a task's settings cannot be resolved.
#[derive(Debug, Clone)]
pub(crate) enum SettingsError {
    Options(OptionError),
    Mode(ModeRefused),
}

/// What a run's dispatcher shares with those who watch its progress.
#[derive(Default)]
pub(crate) struct Tally {
    /// Attempts that did not succeed.
    pub(crate) failed_attempts: AtomicU64,
    /// The executors started so far, which know how many attempts run now.
    pub(crate) executors: Mutex<Vec<Arc<dyn Executor>>>,
}

impl Tally {
    pub(crate) fn add_executor(&self, e: &Arc<dyn Executor>) {
        self.executors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(e));
    }
}

/// How a run ended, as its dispatcher tells it.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    /// From the start of the run to its end.
    pub(crate) wall: Duration,
    /// Whether it was interrupted.
    pub(crate) interrupted: bool,
    /// The queue failure that ended the run early, if any.
    pub(crate) error: Option<QueueError>,
}
