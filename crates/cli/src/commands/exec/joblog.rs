//! `--joblog FILE`: a line per job as GNU parallel writes it, so scripts
//! that read parallel's job logs read runyard's.
//!
//! Tab-separated, a header line, then a line per job that ran, written when
//! it ends: parallel's columns in parallel's order and number formats
//! (`Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`),
//! then runyard's own (`Attempts`). `docs/report-format.md` says what each
//! holds. A job that never started (cancelled by `--halt` or an interrupt
//! before its turn) has no line, as in parallel. A write that fails is
//! reported once, when the run ends (exit code 3); the lines after it are
//! not written.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runyard::exec::os::signal_number;
use runyard::report::JobView;
use runyard::JobState;

use crate::exit::{RunnerFailure, UsageError};
use crate::output::report::{creatable, output_failed};

pub(super) const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tAttempts\n";

/// An open job log.
#[derive(Debug)]
pub(super) struct Joblog {
    path: PathBuf,
    file: File,
    failed: Option<RunnerFailure>,
}

impl Joblog {
    /// Checks that the log can be created, before anything is opened.
    pub(super) fn check(path: &Path) -> Result<(), UsageError> {
        creatable(path).map_err(|e| cannot_create(path, e))
    }

    /// Creates the log and writes its header, before anything runs.
    pub(super) fn create(path: &Path) -> anyhow::Result<Joblog> {
        let mut file = File::create(path).map_err(|e| cannot_create(path, e))?;
        file.write_all(HEADER.as_bytes())
            .map_err(|e| output_failed("--joblog", path, &e))?;
        Ok(Joblog {
            path: path.to_path_buf(),
            file,
            failed: None,
        })
    }

    /// Writes the line of an ended job (none if it never started).
    pub(super) fn record(&mut self, view: &JobView, command: &str, receive: u64) {
        if self.failed.is_some() {
            return;
        }
        let Some(line) = line(view, command, receive) else {
            return;
        };
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            self.failed = Some(output_failed("--joblog", &self.path, &e));
        }
    }

    /// The first write that failed, if one did.
    pub(super) fn finish(self) -> Option<RunnerFailure> {
        self.failed
    }
}

/// The error of a job log that cannot be created.
fn cannot_create(path: &Path, e: std::io::Error) -> UsageError {
    UsageError(format!(
        "{}: cannot create the job log: {e}",
        path.display()
    ))
}

/// A job's line, if it ran.
fn line(view: &JobView, command: &str, receive: u64) -> Option<String> {
    let last = view.attempts.last()?;
    let (exitval, signal) = exit_of(view);
    let start = last.started_at.as_micros();
    Some(format!(
        "{}\t:\t{}.{:03}\t{}\t0\t{receive}\t{exitval}\t{signal}\t{}\t{}\n",
        view.id.0,
        start.div_euclid(1_000_000),
        start.rem_euclid(1_000_000) / 1000,
        runtime(last.duration()),
        command.replace('\n', "\0").replace('\t', " "),
        view.attempts.len(),
    ))
}

/// Seconds as parallel writes a job's runtime: `%10.3f`.
fn runtime(d: Duration) -> String {
    format!("{:10.3}", d.as_secs_f64())
}

/// The exit status and signal of a job's last attempt, as parallel counts
/// them: a signal leaves the status 0; no status at all is -1.
fn exit_of(view: &JobView) -> (i64, i32) {
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    let found = if view.state == JobState::Succeeded {
        json(view.output.as_json()).map(|o| (o["exit_code"].as_i64(), None))
    } else {
        view.attempts
            .last()
            .and_then(|a| a.error.as_ref())
            .and_then(|e| e.detail.as_ref())
            .and_then(|d| json(d.get()))
            .map(|d| {
                (
                    d["exit_code"].as_i64(),
                    d["signal"].as_str().and_then(signal_number),
                )
            })
    };
    match found {
        Some((Some(code), _)) => (code, 0),
        Some((None, Some(sig))) => (0, sig),
        _ => (-1, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_padded_as_parallel_pads_them() {
        assert_eq!(runtime(Duration::from_millis(6)), "     0.006");
        assert_eq!(runtime(Duration::from_secs(12345)), " 12345.000");
    }
}
