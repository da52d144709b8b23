//! The live progress bar on standard error (a terminal only), fed by
//! polling the run's counts and, while jobs wait, what holds them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use runyard::report::HeldJobs;
use runyard::Progress;
use runyard_core::Hold;

/// Polls between two looks at what holds waiting jobs (a look reads every
/// waiting job of the queue: not on every redraw).
const HELD_EVERY: u32 = 20;

/// A live progress bar on standard error, fed by polling the run's counts.
pub(crate) struct ProgressView {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    bar: ProgressBar,
}

impl ProgressView {
    /// Starts the bar over `total` jobs (0: as many as the queue holds, for
    /// jobs submitted as they are read): `poll` gives the counts (ten times a second),
    /// `held` what holds the waiting jobs (every two seconds while some
    /// wait).
    pub(crate) fn start(
        total: u64,
        poll: impl Fn() -> Option<Progress> + Send + 'static,
        held: impl Fn() -> Vec<HeldJobs> + Send + 'static,
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
                let (mut polls, mut note) = (0u32, String::new());
                while !s.load(Ordering::Relaxed) {
                    if let Some(p) = poll() {
                        let c = p.counts;
                        if c.queued == 0 {
                            note.clear();
                        } else if polls % HELD_EVERY == 0 {
                            note = held_note(&held());
                        }
                        polls = polls.wrapping_add(1);
                        if total == 0 {
                            b.set_length(c.total());
                        }
                        b.set_position(c.succeeded + c.dead + c.cancelled);
                        let blocked = if c.blocked > 0 {
                            format!(" blocked {}", c.blocked)
                        } else {
                            String::new()
                        };
                        b.set_message(format!(
                            "ok {} dead {} cancelled {} running {}{blocked}{note} failed attempts {}",
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

/// What holds waiting jobs, for the bar (blocked jobs are counted apart):
/// ` held 4 (concurrency limit of task `sleep` (1 at once))`, with
/// `+N more reasons` when there are others; empty when nothing does.
fn held_note(held: &[HeldJobs]) -> String {
    let limits: Vec<&HeldJobs> = held
        .iter()
        .filter(|h| h.hold != Hold::Dependencies)
        .collect();
    let Some(first) = limits.first() else {
        return String::new();
    };
    let jobs: u64 = limits.iter().map(|h| h.jobs).sum();
    let more = match limits.len() - 1 {
        0 => String::new(),
        1 => ", +1 more reason".to_string(),
        n => format!(", +{n} more reasons"),
    };
    format!(
        " held {jobs} ({}{more})",
        crate::commands::flow::hold_text(&first.hold)
    )
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

#[cfg(test)]
mod tests {
    use super::{held_note, rate, HeldJobs};
    use runyard_core::{Hold, LimitTarget};

    #[test]
    fn the_bar_says_what_holds_waiting_jobs() {
        let concurrency = HeldJobs {
            hold: Hold::Concurrency {
                target: LimitTarget::Task("sleep".into()),
                limit: 1,
            },
            jobs: 4,
        };
        let paused = HeldJobs {
            hold: Hold::Paused { task: "cpu".into() },
            jobs: 2,
        };
        let blocked = HeldJobs {
            hold: Hold::Dependencies,
            jobs: 7,
        };
        assert_eq!(
            held_note(std::slice::from_ref(&concurrency)),
            " held 4 (concurrency limit of task `sleep` (1 at once))"
        );
        assert_eq!(
            held_note(&[concurrency, paused, blocked.clone()]),
            " held 6 (concurrency limit of task `sleep` (1 at once), +1 more reason)"
        );
        assert_eq!(
            held_note(&[blocked]),
            "",
            "blocked jobs have their own count"
        );
        assert_eq!(held_note(&[]), "");
    }

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
