//! How a command ends: its exit code, from its result or its error, in
//! one place.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | every job succeeded (or the command did what it was asked) |
//! | 1    | a job ended dead or cancelled |
//! | 2    | usage or input error: nothing ran ([`UsageError`], a job's [`InputError`], a queue that refused the request as invalid) |
//! | 3    | the runner itself failed ([`RunnerFailure`], and any other error): a queue or an output it could not reach or write |
//! | 130  | interrupted |
//! | 141  | `exec`'s standard output was closed |
//!
//! Codes 0, 1, 130 and 141 are results ([`Exit`]); 2 and 3 are errors,
//! told apart by the error's chain ([`error_code`]). An error is printed
//! once on standard error, its causes joined by `: `, each written once
//! ([`error_text`]).

use std::fmt;
use std::process::ExitCode;

use runyard::queue::{QueueError, QueueErrorKind};

use crate::jobs::InputError;

/// Bad input found before anything ran: exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The runner itself failed (a queue it could not reach or write, an output it could not write): exit code 3.
#[derive(Debug)]
pub(crate) struct RunnerFailure(pub(crate) String);

impl fmt::Display for RunnerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunnerFailure {}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: every job succeeded, or the command did what it was asked.
    Success,
    /// 1: a job ended dead or cancelled.
    NotAllSucceeded,
    /// 130: interrupted (Ctrl-C or SIGTERM).
    Interrupted,
    /// 141: `exec`'s standard output was closed.
    StdoutClosed,
    /// The code a child process of `--mode process` ends with (its own
    /// protocol's, from `runyard::process`).
    Child(u8),
}

impl Exit {
    /// The end of a run: interrupted first, then whether every job
    /// succeeded.
    pub(crate) fn of_run(interrupted: bool, all_succeeded: bool) -> Exit {
        if interrupted {
            Exit::Interrupted
        } else if all_succeeded {
            Exit::Success
        } else {
            Exit::NotAllSucceeded
        }
    }
}

impl Exit {
    /// The process's exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::NotAllSucceeded => 1,
            Exit::Interrupted => 130,
            Exit::StdoutClosed => 141,
            Exit::Child(c) => c,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The exit code for an error: 2 when the input was at fault (nothing ran),
/// 3 when the runner was.
pub(crate) fn error_code(e: &anyhow::Error) -> ExitCode {
    let input = e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<InputError>()
            || c.downcast_ref::<QueueError>()
                .is_some_and(|q| q.kind() == QueueErrorKind::InvalidInput)
    });
    ExitCode::from(if input { 2 } else { 3 })
}

/// An error and its causes, joined by `: `, each cause written once: a
/// cause whose text ends the one before it (an error that shows its source
/// in its own message and returns it as its source too) is not repeated.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || last.ends_with(&c) {
            last = c;
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
        last = c;
    }
    text
}
