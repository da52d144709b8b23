//! Event sinks: where job state transitions go (JSON lines, log lines, a
//! progress bar). See [`runyard_core::Event`] for the events and their JSON.
//! And the [`Meter`]: what a worker counts of its own work, for metrics.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use runyard_core::{Event, OutcomeKind};

/// Receives every job state transition of a run, in order.
pub trait EventSink: Send + Sync {
    /// One transition.
    fn event(&self, event: &Event<'_>);

    /// The run ended: write out anything buffered.
    fn flush(&self) {}
}

/// Counts what one run or worker does itself: its claims, the attempts
/// it starts and ends, the leases it rescues or loses, the schedule ticks
/// it fires. Each call is about this process's own work only, so that
/// metrics summed over every worker of a queue count each thing once.
///
/// The dispatcher calls it from its own thread as things happen (the
/// firing thread for ticks), with no lock held and nothing allocated for
/// the call: an implementation should be as cheap (atomic counters, say).
/// Every method does nothing by default.
pub trait Meter: Send + Sync {
    /// `jobs` were claimed by one claim (never called for an empty one).
    fn claimed(&self, jobs: usize) {
        let _ = jobs;
    }

    /// An attempt of `task` started, `queue_wait` after its job became
    /// ready to run (submitted, due, unblocked or retried).
    fn started(&self, task: &str, queue_wait: Duration) {
        let _ = (task, queue_wait);
    }

    /// An attempt of `task` ended with `outcome` after running `duration`:
    /// the outcome this worker records (a job cancelled before its attempt
    /// started ends `cancelled` after zero).
    fn finished(&self, task: &str, outcome: OutcomeKind, duration: Duration) {
        let _ = (task, outcome, duration);
    }

    /// How many attempts are running now (started and not ended); called
    /// when the number changes, at most once per turn of the dispatcher.
    fn running(&self, attempts: usize) {
        let _ = attempts;
    }

    /// This worker's rescue put back `jobs` whose leases (another
    /// worker's, which died) had expired.
    fn rescued(&self, jobs: usize) {
        let _ = jobs;
    }

    /// `leases` held here were lost (taken over, or given up when they
    /// could not be renewed): their attempts were stopped unrecorded.
    fn lost(&self, leases: usize) {
        let _ = leases;
    }

    /// Schedule ticks this worker settled in one call: `fired` made their
    /// submissions, `skipped` did not (overlap), `missed` were never fired
    /// within their grace.
    fn ticks(&self, fired: usize, skipped: usize, missed: u64) {
        let _ = (fired, skipped, missed);
    }
}

/// A run's meter, if it has one.
#[derive(Clone, Default)]
pub(crate) struct Meters(Option<Arc<dyn Meter>>);

impl fmt::Debug for Meters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Meter" } else { "None" })
    }
}

impl Meters {
    pub(crate) fn new(meter: Option<Arc<dyn Meter>>) -> Meters {
        Meters(meter)
    }

    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn get(&self) -> Option<&dyn Meter> {
        self.0.as_deref()
    }
}

/// Writes events as JSON lines: `{"type": ..., "data": {...}}` per line.
///
/// A write that fails (a full disk, a closed pipe) does not stop the run:
/// the sink keeps the first error, drops what it had buffered, closes the
/// writer and writes nothing more; [`JsonLines::take_error`] gives the
/// error back, for the program to report when the run ends. An event that
/// cannot be encoded is skipped whole (never half a line) and kept the same
/// way.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<Lines<W>>,
}

struct Lines<W: Write> {
    /// `None` once a write has failed.
    writer: Option<BufWriter<W>>,
    /// The line being encoded.
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl<W: Write> Lines<W> {
    fn fail(&mut self, e: io::Error) {
        if let Some(w) = self.writer.take() {
            // The buffered lines are dropped with the writer's failure, not
            // written later by the buffer's own drop.
            let _ = w.into_parts();
        }
        self.error.get_or_insert(e);
    }
}

impl<W: Write + Send> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out: Mutex::new(Lines {
                writer: Some(BufWriter::new(out)),
                line: Vec::new(),
                error: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lines<W>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first error, if writing or encoding failed (events from then on
    /// were not written). Call it after the run's last flush
    /// ([`crate::Run::wait`] flushes).
    pub fn take_error(&self) -> Option<io::Error> {
        self.lock().error.take()
    }
}

impl<W: Write + Send> fmt::Debug for JsonLines<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonLines")
    }
}

impl<W: Write + Send> EventSink for JsonLines<W> {
    fn event(&self, event: &Event<'_>) {
        let mut out = self.lock();
        let out = &mut *out;
        let Some(w) = &mut out.writer else {
            return;
        };
        out.line.clear();
        let written = match serde_json::to_writer(&mut out.line, event) {
            Ok(()) => {
                out.line.push(b'\n');
                w.write_all(&out.line)
            }
            Err(e) => Err(io::Error::from(e)),
        };
        if let Err(e) = written {
            out.fail(e);
        }
    }

    fn flush(&self) {
        let mut out = self.lock();
        if let Some(Err(e)) = out.writer.as_mut().map(Write::flush) {
            out.fail(e);
        }
    }
}

/// The run's sinks, and the lock that keeps their events in order across
/// the submitting thread and the dispatcher.
#[derive(Default, Clone)]
pub(crate) struct Events {
    sinks: Arc<Vec<Arc<dyn EventSink>>>,
    order: Arc<Mutex<()>>,
    /// Events emitted since the last flush.
    dirty: Arc<std::sync::atomic::AtomicBool>,
}

impl Events {
    pub(crate) fn new(sinks: Vec<Arc<dyn EventSink>>) -> Events {
        Events {
            sinks: Arc::new(sinks),
            order: Arc::new(Mutex::new(())),
            dirty: Arc::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Holds the order while a batch of events is emitted.
    pub(crate) fn lock(&self) -> Option<MutexGuard<'_, ()>> {
        (!self.sinks.is_empty()).then(|| self.order.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn emit(&self, e: &Event<'_>) {
        for s in self.sinks.iter() {
            s.event(e);
        }
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn flush(&self) {
        self.dirty
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for s in self.sinks.iter() {
            s.flush();
        }
    }

    /// Flushes if anything was emitted since the last flush: the dispatcher
    /// calls this once per turn, so event files stay live at a write per
    /// batch of transitions.
    pub(crate) fn flush_if_dirty(&self) {
        if self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::{JobId, QueuedReason, Timestamp};

    use super::*;

    /// Takes `room` bytes, then fails as a full disk does.
    struct Filling {
        taken: Arc<Mutex<Vec<u8>>>,
        room: usize,
    }

    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut taken = self.taken.lock().unwrap();
            let n = buf.len().min(self.room - taken.len());
            if n == 0 {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// "No space left on device" on Linux.
    const ENOSPC: i32 = 28;

    fn queued(job: u64) -> Event<'static> {
        Event::Queued {
            job: JobId(job),
            task: "noop",
            at: Timestamp::EPOCH,
            reason: QueuedReason::Submitted,
            schedule: None,
        }
    }

    #[test]
    fn the_first_write_error_is_kept_and_nothing_is_written_after_it() {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let sink = JsonLines::new(Filling {
            taken: Arc::clone(&taken),
            room: 150,
        });
        sink.event(&queued(1));
        sink.flush();
        assert!(sink.take_error().is_none(), "one line fits");
        let one_line = taken.lock().unwrap().len();
        for job in 2..100 {
            sink.event(&queued(job));
        }
        sink.flush();
        sink.event(&queued(100));
        sink.flush();
        let e = sink.take_error().expect("the full disk is reported");
        assert_eq!(e.raw_os_error(), Some(ENOSPC));
        let written = taken.lock().unwrap().clone();
        assert_eq!(written.len(), 150, "nothing was written past the failure");
        assert!(one_line < 150);
        let text = String::from_utf8(written).unwrap();
        assert!(
            text.starts_with(r#"{"type":"queued","data":{"job":1,"#),
            "{text}"
        );
    }
}
