//! The run's machine outputs: `--json` (the report) and `--events` (JSON
//! lines), checked before anything is opened ([`OutputPaths`]), created
//! before the run starts ([`RunOutputs`]) and finished after it; a write
//! that fails is told once, by the flag that named the output.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runyard::event::{EventSink, JsonLines};
use runyard::queue::{Queue, QueueError};
use runyard::report::{write_report_json, Summary};
use runyard::{ReportError, ReportReader, RunError};

use crate::exit::RunnerFailure;
use crate::jobs::InputError;

type Out = Box<dyn Write + Send>;

/// How a run ended, for its report: a run the queue stopped early is
/// reported as far as the queue has it, with the failure that stopped it.
pub(crate) fn split_end(
    ended: Result<ReportReader, RunError>,
) -> Result<(ReportReader, Option<QueueError>), RunError> {
    match ended {
        Ok(r) => Ok((r, None)),
        Err(RunError::Stopped { error, run }) => Ok((*run, Some(error))),
        Err(e) => Err(e),
    }
}

/// A run's `--json` and `--events` paths, each checked to be one that can
/// be created ([`creatable`]); nothing is opened yet.
#[derive(Debug, Default)]
pub(crate) struct OutputPaths {
    json: Option<PathBuf>,
    events: Option<PathBuf>,
}

impl OutputPaths {
    /// Checks both paths (a path that cannot be created is an input error).
    pub(crate) fn check(
        json: Option<&PathBuf>,
        events: Option<&PathBuf>,
    ) -> Result<OutputPaths, InputError> {
        for (p, what) in [(json, "report"), (events, "events")] {
            if let Some(p) = p {
                creatable(p).map_err(|e| cannot_create(p, what, e))?;
            }
        }
        Ok(OutputPaths {
            json: json.cloned(),
            events: events.cloned(),
        })
    }

    /// Creates the files, once the command has opened what it needs.
    pub(crate) fn open(&self) -> Result<RunOutputs, InputError> {
        RunOutputs::open(self.json.as_ref(), self.events.as_ref())
    }
}

/// Checks, before anything is opened, that `p` can be created, without
/// leaving a trace: an existing file (or directory) is opened for writing
/// and closed untouched; a missing one is created and removed again.
/// Other existing files (a FIFO, `/dev/full`) and a dangling link are
/// left to the moment they are opened: opening a FIFO would wait for its
/// reader. `-` (standard output) can always be written.
pub(crate) fn creatable(p: &Path) -> io::Result<()> {
    if is_stdout(p) {
        return Ok(());
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() || m.is_dir() => {
            std::fs::OpenOptions::new().write(true).open(p).map(drop)
        }
        Ok(_) => Ok(()),
        Err(_) if std::fs::symlink_metadata(p).is_ok() => Ok(()),
        Err(_) => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)?;
            let _ = std::fs::remove_file(p);
            Ok(())
        }
    }
}

/// The error of an output file that cannot be created (an input error).
fn cannot_create(p: &Path, what: &str, e: io::Error) -> InputError {
    InputError::new(
        p.display().to_string(),
        format!("cannot create the {what} file: {e}"),
    )
}

/// A run's `--json` and `--events` outputs, opened before anything runs.
pub(crate) struct RunOutputs {
    json: Option<(PathBuf, Out)>,
    events: Option<(PathBuf, Arc<JsonLines<Out>>)>,
}

impl RunOutputs {
    /// Creates the files (a path that cannot be created is an input error).
    pub(crate) fn open(
        json: Option<&PathBuf>,
        events: Option<&PathBuf>,
    ) -> Result<RunOutputs, InputError> {
        Ok(RunOutputs {
            json: json
                .map(|p| Ok::<_, InputError>((p.clone(), create_output(p, "report")?)))
                .transpose()?,
            events: events
                .map(|p| {
                    Ok::<_, InputError>((
                        p.clone(),
                        Arc::new(JsonLines::new(create_output(p, "events")?)),
                    ))
                })
                .transpose()?,
        })
    }

    /// The sink of `--events`, if given.
    pub(crate) fn events_sink(&self) -> Option<Arc<dyn EventSink>> {
        self.events
            .as_ref()
            .map(|(_, sink)| Arc::clone(sink) as Arc<dyn EventSink>)
    }

    /// After the run (its events flushed): the write to the events file
    /// that failed, if one did (for a command with no report, the whole of
    /// its finish).
    pub(crate) fn events_failure(&self) -> Option<RunnerFailure> {
        let (path, sink) = self.events.as_ref()?;
        sink.take_error()
            .map(|e| output_failed("--events", path, &e))
    }

    /// After the run (its events flushed): notes an events file that
    /// failed, and writes the report. Returns the outputs that failed.
    pub(crate) fn finish(
        self,
        queue: &dyn Queue,
        summary: &Summary,
    ) -> anyhow::Result<Vec<RunnerFailure>> {
        let mut failed: Vec<RunnerFailure> = self.events_failure().into_iter().collect();
        if let Some((path, w)) = self.json {
            match write_report_json(queue, summary, w) {
                Ok(()) => {}
                Err(ReportError::Io(e)) => failed.push(output_failed("--json", &path, &e)),
                Err(e) => return Err(RunnerFailure(format!("reading the report: {e}")).into()),
            }
        }
        Ok(failed)
    }
}

/// Ends a run whose outputs failed: every failure in one error, each said
/// once (exit code 3); nothing if none failed.
pub(crate) fn check_outputs(failures: Vec<RunnerFailure>) -> Result<(), RunnerFailure> {
    if failures.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = failures.into_iter().map(|f| f.0).collect();
    Err(RunnerFailure(all.join("; ")))
}

/// An I/O error's message, without the ` (os error N)` std adds to it.
pub(crate) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

/// A write to one of the run's outputs failed: the output, by the flag
/// that named it, and why (`--events out.jsonl: No space left on device`).
pub(crate) fn output_failed(flag: &str, path: &Path, e: &io::Error) -> RunnerFailure {
    let name = if is_stdout(path) {
        "- (standard output)".to_string()
    } else {
        path.display().to_string()
    };
    RunnerFailure(format!("{flag} {name}: {}", io_message(e)))
}

/// The path for messages: `-` is standard output.
pub(crate) fn is_stdout(p: &Path) -> bool {
    p == Path::new("-")
}

/// Opens an output file before anything runs, so a bad path is an input error.
pub(crate) fn create_output(p: &Path, what: &str) -> Result<Out, InputError> {
    if is_stdout(p) {
        return Ok(Box::new(std::io::stdout()));
    }
    std::fs::File::create(p)
        .map(|f| Box::new(f) as Out)
        .map_err(|e| cannot_create(p, what, e))
}
