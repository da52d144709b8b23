//! The engine's errors: a job refused at submit, a run that could not
//! start, a run that stopped early or whose report could not be read.
//!
//! Each error's message says what failed at its own level and gives the
//! lower-level cause as its [`source`](std::error::Error::source), never in
//! its message too: printed with its chain (anyhow's `{:#}`), each cause
//! appears once.

use std::io;

use runyard_core::{OptionError, ParamError, UnknownTask};
use runyard_queue::QueueError;
use thiserror::Error;

use crate::lane::ModeRefused;
use crate::report::ReportReader;

/// A job that was refused before anything ran.
#[derive(Debug, Error)]
#[non_exhaustive]
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
    #[error("the queue failed")]
    Queue(#[from] QueueError),
}

/// A run could not start: the process could not start its dispatcher
/// thread (it has as many threads as it may have, or no memory for one).
#[derive(Debug, Error)]
#[error("the engine's dispatcher thread could not start")]
pub struct StartError {
    #[source]
    source: io::Error,
}

impl StartError {
    pub(crate) fn new(source: io::Error) -> StartError {
        StartError { source }
    }
}

/// A run that did not end as it should, or whose report could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// A job was refused before anything ran ([`Engine::run`](crate::Engine::run)).
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The run could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The queue failed while the run was going on, and it stopped early.
    #[error("the run stopped early: the queue failed")]
    Stopped {
        /// The failure.
        #[source]
        error: QueueError,
        /// What the queue holds of the run, to read what it can of the
        /// report.
        run: Box<ReportReader>,
    },
    /// The run ended, but its report could not be read from the queue.
    #[error("the run's report could not be read from the queue")]
    Report(#[source] QueueError),
}

impl RunError {
    /// For a run that stopped early, what the queue holds of it (its
    /// report may still be read, if the queue answers again).
    pub fn stopped_run(&self) -> Option<&ReportReader> {
        match self {
            RunError::Stopped { run, .. } => Some(run),
            _ => None,
        }
    }
}
