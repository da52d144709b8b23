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
    /// A workflow that cannot be submitted as built.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A job of a workflow's step was refused.
    #[error("job {copy} of {copies} of workflow step `{step}`")]
    Step {
        /// The step's name.
        step: String,
        /// Which of its jobs, from 1.
        copy: usize,
        /// How many jobs the step has.
        copies: usize,
        /// Why it was refused.
        #[source]
        error: Box<SubmitError>,
    },
}

/// A run could not start: the process could not start its dispatcher
/// thread (it has as many threads as it may have, or no memory for one),
/// the configuration's task limits name a task the engine does not
/// have ([`StartError::unknown_task`]), or a worker could not publish its
/// tasks to its queue.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct StartError(StartCause);

#[derive(Debug, Error)]
enum StartCause {
    #[error("the engine's dispatcher thread could not start")]
    Thread(#[source] io::Error),
    #[error("the run's limits are for a task the engine does not have")]
    Limits(#[source] UnknownTask),
    #[error("the worker could not publish its tasks to the queue")]
    Publish(#[source] QueueError),
}

impl StartError {
    pub(crate) fn new(source: io::Error) -> StartError {
        StartError(StartCause::Thread(source))
    }

    pub(crate) fn limits(unknown: UnknownTask) -> StartError {
        StartError(StartCause::Limits(unknown))
    }

    pub(crate) fn publish(source: QueueError) -> StartError {
        StartError(StartCause::Publish(source))
    }

    /// The task of the configuration's limits
    /// ([`EngineConfigBuilder::task_limits`](crate::EngineConfigBuilder::task_limits))
    /// that the engine does not have, if that is why the run did not start.
    pub fn unknown_task(&self) -> Option<&UnknownTask> {
        match &self.0 {
            StartCause::Limits(u) => Some(u),
            StartCause::Thread(_) | StartCause::Publish(_) => None,
        }
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

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::sync::Arc;
    use std::time::Duration;

    use runyard_core::{Mode, TaskDef, TaskKind};
    use runyard_exec::limits::Limit;
    use runyard_queue::{MemoryQueue, QueueErrorKind};

    use super::*;
    use crate::config::ConfigError;
    use crate::lane::lane_for;
    use crate::report::ReportError;

    fn queue_error() -> QueueError {
        QueueError::new(QueueErrorKind::Unavailable, "the database is locked")
    }

    /// No error's message repeats its source's: printed with its chain
    /// (anyhow's `{:#}`), each cause appears once.
    fn says_each_cause_once(e: &dyn Error) {
        let mut cur = e;
        while let Some(source) = cur.source() {
            let (this, below) = (cur.to_string(), source.to_string());
            assert!(
                !this.contains(&below),
                "`{this}` repeats its source `{below}`"
            );
            cur = source;
        }
    }

    #[test]
    fn every_error_of_the_engine_gives_its_cause_as_its_source_only() {
        let reader = ReportReader::new(Arc::new(MemoryQueue::new()), Duration::ZERO, false);
        let io = || io::Error::other("out of threads");
        let errors: Vec<Box<dyn Error>> = vec![
            Box::new(SubmitError::Queue(queue_error())),
            Box::new(StartError::new(io())),
            Box::new(RunError::Start(StartError::new(io()))),
            Box::new(RunError::Submit(SubmitError::Queue(queue_error()))),
            Box::new(RunError::Stopped {
                error: queue_error(),
                run: Box::new(reader),
            }),
            Box::new(RunError::Report(queue_error())),
        ];
        for e in &errors {
            says_each_cause_once(&**e);
            assert!(e.source().is_some(), "{e} hides its cause");
        }
        // Transparent: the cause itself.
        says_each_cause_once(&ReportError::Queue(queue_error()));
        says_each_cause_once(&ReportError::Io(io()));
    }

    struct Nap;

    impl runyard_core::AsyncTask for Nap {
        const NAME: &'static str = "nap";
        type Params = ();
        type Output = ();

        async fn run(
            &self,
            _: (),
            _: runyard_core::Context,
        ) -> Result<(), runyard_core::TaskError> {
            Ok(())
        }
    }

    /// Library errors speak of the library: a CLI adds its own flags.
    #[test]
    fn errors_name_no_command_line_flags() {
        let nap = TaskDef::from_async(Nap);
        assert_eq!(nap.kind(), TaskKind::Async);
        let mut messages: Vec<String> = [Mode::Thread, Mode::Process]
            .into_iter()
            .map(|m| lane_for(m, &nap, false).unwrap_err().to_string())
            .collect();
        messages.push(lane_for(Mode::Auto, &nap, true).unwrap_err().to_string());
        messages.push(
            ConfigError::Concurrency {
                mode: Mode::Thread,
                asked: 10_000,
                limit: Limit {
                    most: 4096,
                    bound: runyard_exec::limits::Bound::Cap,
                },
            }
            .to_string(),
        );
        for m in &messages {
            assert!(!m.contains("--") && !m.contains("-j"), "{m}");
        }
        assert!(
            messages[3].contains("a concurrency of 10000"),
            "{}",
            messages[3]
        );
    }
}

/// Why a workflow cannot be submitted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// Two steps have the same name.
    #[error("two steps of the workflow are named `{name}`: step names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A name that cannot be a step's.
    #[error("the step name `{name}` is not valid: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why, and what would be.
        reason: &'static str,
    },
    /// A step of several copies was given none.
    #[error("step `{step}` has no jobs: `add_many` needs at least one")]
    NoJobs {
        /// The step.
        step: String,
    },
    /// A step was made after a step added after it (that could make a
    /// cycle).
    #[error(
        "step `{step}` cannot be after `{after}`, which was added after it: \
         a step is only after steps added before it"
    )]
    Later {
        /// The step.
        step: String,
        /// The step it was to be after.
        after: String,
    },
    /// A step was made after a step of another workflow.
    #[error("step `{step}` cannot be after a step of another workflow")]
    Foreign {
        /// The step.
        step: String,
    },
}
