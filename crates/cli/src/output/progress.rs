//! The live progress bar on standard error (a terminal only), fed by
//! polling the run's counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use runyard::Progress;

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
                        let blocked = if c.blocked > 0 {
                            format!(" blocked {}", c.blocked)
                        } else {
                            String::new()
                        };
                        b.set_message(format!(
                            "ok {} dead {} cancelled {} running {}{blocked} failed attempts {}",
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
