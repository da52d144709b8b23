//! What people read: per-job lines and the summary table, on standard
//! output (or standard error when standard output carries JSON), styled
//! when `--color` says so.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use console::Style;
use runyard::duration::human_duration;
use runyard::event::{Event, EventSink};
use runyard::queue::Queue;
use runyard::report::{JobView, Summary};
use runyard::workflow::Cause;
use runyard::{JobId, JobState};

use crate::exit::RunnerFailure;
use crate::flags::Color;
use crate::stdio::stdout_result;

/// Where human-readable output goes, and whether it is styled.
///
/// A line that cannot be written to standard output is an error of the
/// runner (exit 3), except when the reader has gone (`| head`); it is also
/// kept ([`Human::failure`]) for what writes lines where no error can be
/// returned (the job lines of an event sink). Standard error's failures
/// are ignored, as everywhere.
#[derive(Clone)]
pub(crate) struct Human {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    to_stdout: bool,
    failed: Arc<OnceLock<String>>,
    pub(crate) styled: bool,
    pub(crate) is_terminal: bool,
}

impl Human {
    /// Standard output, or standard error when standard output carries JSON.
    pub(crate) fn new(to_stderr: bool, color: Color) -> Human {
        let (out, is_terminal): (Box<dyn Write + Send>, bool) = if to_stderr {
            (Box::new(std::io::stderr()), std::io::stderr().is_terminal())
        } else {
            (Box::new(std::io::stdout()), std::io::stdout().is_terminal())
        };
        let styled = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none(),
        };
        Human {
            out: Arc::new(Mutex::new(out)),
            to_stdout: !to_stderr,
            failed: Arc::new(OnceLock::new()),
            styled,
            is_terminal,
        }
    }

    /// Writes a line (see [`Human`] for its errors).
    pub(crate) fn line(&self, s: &str) -> Result<(), RunnerFailure> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let written = writeln!(out, "{s}").and_then(|()| out.flush());
        if !self.to_stdout {
            return Ok(());
        }
        stdout_result(written).inspect_err(|f| {
            let _ = self.failed.set(f.0.clone());
        })
    }

    /// The first line that could not be written, if one could not.
    pub(crate) fn failure(&self) -> Option<RunnerFailure> {
        self.failed.get().cloned().map(RunnerFailure)
    }

    fn style(&self, s: &Style, text: &str) -> String {
        if self.styled {
            s.apply_to(text).force_styling(true).to_string()
        } else {
            text.to_string()
        }
    }

    pub(crate) fn state(&self, state: &str) -> String {
        let st = match state {
            "succeeded" => Style::new().green(),
            "dead" => Style::new().red().bold(),
            "cancelled" => Style::new().yellow(),
            _ => Style::new(),
        };
        self.style(&st, &format!("{state:<9}"))
    }

    pub(crate) fn dim(&self, text: &str) -> String {
        self.style(&Style::new().dim(), text)
    }

    pub(crate) fn bold(&self, text: &str) -> String {
        self.style(&Style::new().bold(), text)
    }
}

/// One line per finished job: state, task, id, attempts, time of the last
/// attempt; for a job cancelled by a job it was after, that job and its
/// state (read from `queue`).
pub(crate) struct JobLines {
    pub(crate) human: Human,
    pub(crate) queue: Arc<dyn Queue>,
}

/// Why a job was cancelled, when a job it was after ended dead or
/// cancelled: "cancelled: job 3 (extract) ended dead". `state_of` tells
/// the cause's state, if it can.
pub(crate) fn cancel_reason(
    v: &JobView,
    state_of: impl Fn(JobId) -> Option<JobState>,
) -> Option<String> {
    let cause = v.cancelled_by.as_ref()?;
    Some(cause_text(cause, state_of(cause.job)))
}

/// "cancelled: job 3 (extract) ended dead", for a cause in `state`.
fn cause_text(cause: &Cause, state: Option<JobState>) -> String {
    match state {
        Some(s) if s.is_terminal() => format!("cancelled: {cause} ended {s}"),
        _ => format!("cancelled: {cause} did not succeed"),
    }
}

/// A job's state in `queue`, if it can be read.
pub(crate) fn state_in(queue: &dyn Queue, id: JobId) -> Option<JobState> {
    queue.inspect().ok()?.get(id).ok()?.map(|v| v.state)
}

impl EventSink for JobLines {
    fn event(&self, e: &Event<'_>) {
        let line = match e {
            Event::Succeeded {
                job,
                task,
                attempt,
                duration_ms,
                ..
            } => format!(
                "{} {task} #{job} attempts={attempt} time={}",
                self.human.state("succeeded"),
                ms(*duration_ms)
            ),
            Event::Dead {
                job,
                task,
                attempt,
                outcome,
                duration_ms,
                error,
                ..
            } => format!(
                "{} {task} #{job} attempts={attempt} time={} {outcome}: {error}",
                self.human.state("dead"),
                ms(*duration_ms)
            ),
            Event::Cancelled {
                job,
                task,
                attempts,
                cancelled_by,
                ..
            } => {
                let why = cancelled_by
                    .map(|c| format!(" {}", cause_text(c, state_in(&*self.queue, c.job))))
                    .unwrap_or_default();
                format!(
                    "{} {task} #{job} attempts={attempts}{why}",
                    self.human.state("cancelled")
                )
            }
            Event::Fired {
                schedule,
                tick,
                jobs,
                ..
            } => {
                let ids: Vec<String> = jobs.iter().map(|j| format!("#{j}")).collect();
                format!(
                    "{} schedule {schedule} tick {tick}: {}",
                    self.human.state("fired"),
                    ids.join(" ")
                )
            }
            Event::Skipped { schedule, tick, .. } => format!(
                "{} schedule {schedule} tick {tick}: its last job has not ended (overlap = skip)",
                self.human.state("skipped")
            ),
            Event::Missed {
                schedule, count, ..
            } => format!(
                "{} schedule {schedule}: {count} tick{} not fired within the grace",
                self.human.state("missed"),
                if *count == 1 { "" } else { "s" }
            ),
            _ => return,
        };
        let line = match e.tick() {
            Some(t) => format!("{line} schedule={} tick={}", t.schedule, t.tick),
            None => line,
        };
        // A failure is kept in `human`, and told when the run ends.
        let _ = self.human.line(&line);
    }
}

fn ms(v: f64) -> String {
    human_duration(Duration::from_secs_f64(v.max(0.0) / 1e3))
}

/// The summary table: per task, jobs and states, attempts, attempt-time
/// percentiles; `blocked` of the unfinished jobs are blocked.
pub(crate) fn print_summary(human: &Human, s: &Summary, blocked: u64) -> Result<(), RunnerFailure> {
    let header = format!(
        "{:<16} {:>7} {:>9} {:>6} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "task", "jobs", "succeeded", "dead", "cancelled", "attempts", "p50", "p95", "max"
    );
    human.line(&human.bold(&header))?;
    let t = |ms: f64| human_duration(Duration::from_secs_f64(ms / 1e3));
    for r in &s.tasks {
        human.line(&format!(
            "{:<16} {:>7} {:>9} {:>6} {:>9} {:>8} {:>9} {:>9} {:>9}",
            r.task,
            r.jobs,
            r.succeeded,
            r.dead,
            r.cancelled,
            r.attempts,
            t(r.p50_ms),
            t(r.p95_ms),
            t(r.max_ms)
        ))?;
    }
    human.line(&format!(
        "{:<16} {:>7} {:>9} {:>6} {:>9} {:>8}",
        "total", s.jobs, s.succeeded, s.dead, s.cancelled, s.attempts
    ))?;
    let mut tail = format!("wall time {}", t(s.wall_ms));
    if s.interrupted {
        tail.push_str(" (interrupted)");
    }
    if s.unfinished > 0 {
        tail.push_str(&format!("; {} jobs unfinished", s.unfinished));
    }
    if !s.held.is_empty() {
        tail.push_str(&format!(
            "; held when interrupted: {}",
            crate::commands::flow::held_text(&s.held)
        ));
    }
    let told = s
        .held
        .iter()
        .any(|h| h.hold == runyard_core::Hold::Dependencies);
    if blocked > 0 && !told {
        tail.push_str(&format!(
            " ({blocked} blocked: waiting for the jobs they are after)"
        ));
    }
    human.line(&human.dim(&tail))
}
