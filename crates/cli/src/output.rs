//! What people see: per-job lines, the progress bar, the summary table.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use runyard::duration::human_duration;
use runyard::event::{Event, EventSink, JsonLines};
use runyard::queue::Queue;
use runyard::report::{write_report_json, Summary};
use runyard::{Progress, ReportError};

use crate::args::Color;
use crate::jobs::{create_output, is_stdout, InputError};
use crate::RunnerFailure;

type Out = Box<dyn Write + Send>;

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

    /// After the run (its events flushed): notes an events file that
    /// failed, and writes the report. Returns the outputs that failed.
    pub(crate) fn finish(
        self,
        queue: &dyn Queue,
        summary: &Summary,
    ) -> anyhow::Result<Vec<RunnerFailure>> {
        let mut failed = Vec::new();
        if let Some((path, sink)) = &self.events {
            if let Some(e) = sink.take_error() {
                failed.push(output_failed("--events", path, &e));
            }
        }
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

/// Where human-readable output goes, and whether it is styled.
#[derive(Clone)]
pub(crate) struct Human {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
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
            styled,
            is_terminal,
        }
    }

    pub(crate) fn line(&self, s: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed pipe (`| head`) is not an error of the run.
        let _ = writeln!(out, "{s}");
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

/// One line per finished job: state, task, id, attempts, time of the last attempt.
pub(crate) struct JobLines {
    pub(crate) human: Human,
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
                ..
            } => format!(
                "{} {task} #{job} attempts={attempts}",
                self.human.state("cancelled")
            ),
            _ => return,
        };
        self.human.line(&line);
    }
}

fn ms(v: f64) -> String {
    human_duration(Duration::from_secs_f64(v.max(0.0) / 1e3))
}

/// A live progress bar on standard error, fed by polling the run's counts.
pub(crate) struct ProgressView {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    bar: ProgressBar,
}

impl ProgressView {
    pub(crate) fn start(
        total: u64,
        poll: impl Fn() -> Option<Progress> + Send + 'static,
    ) -> ProgressView {
        let bar =
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {msg} {rate:.dim} ETA {eta}",
            )
            .expect("valid template")
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate(s.per_sec()));
            })
            .progress_chars("=> "),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bar.clone(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("runyard-progress".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some(p) = poll() {
                        let c = p.counts;
                        b.set_position(c.succeeded + c.dead + c.cancelled);
                        b.set_message(format!(
                            "ok {} dead {} cancelled {} running {} failed attempts {}",
                            c.succeeded, c.dead, c.cancelled, c.running, p.failed_attempts
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        ProgressView { stop, thread, bar }
    }

    pub(crate) fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Jobs per second, to three digits or whole with thousands separators:
/// `0.05/s`, `9.97/s`, `99.7/s`, `1,234/s`.
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".to_string();
    }
    if per_sec < 9.995 {
        return format!("{per_sec:.2}/s");
    }
    if per_sec < 99.95 {
        return format!("{per_sec:.1}/s");
    }
    let digits = format!("{:.0}", per_sec);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str("/s");
    out
}

/// The summary table: per task, jobs and states, attempts, attempt-time percentiles.
pub(crate) fn print_summary(human: &Human, s: &Summary) {
    let header = format!(
        "{:<16} {:>7} {:>9} {:>6} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "task", "jobs", "succeeded", "dead", "cancelled", "attempts", "p50", "p95", "max"
    );
    human.line(&human.bold(&header));
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
        ));
    }
    human.line(&format!(
        "{:<16} {:>7} {:>9} {:>6} {:>9} {:>8}",
        "total", s.jobs, s.succeeded, s.dead, s.cancelled, s.attempts
    ));
    let mut tail = format!("wall time {}", t(s.wall_ms));
    if s.interrupted {
        tail.push_str(" (interrupted)");
    }
    if s.unfinished > 0 {
        tail.push_str(&format!("; {} jobs unfinished", s.unfinished));
    }
    human.line(&human.dim(&tail));
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(rate(9.9691), "9.97/s");
        assert_eq!(rate(0.05), "0.05/s");
        assert_eq!(rate(9.999), "10.0/s");
        assert_eq!(rate(99.74), "99.7/s");
        assert_eq!(rate(99.96), "100/s");
        assert_eq!(rate(1234.4), "1,234/s");
        assert_eq!(rate(1_234_567.0), "1,234,567/s");
        assert_eq!(rate(f64::NAN), "0/s");
        assert_eq!(rate(f64::INFINITY), "0/s");
    }
}
