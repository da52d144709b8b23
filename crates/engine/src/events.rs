//! Event sinks: where job state transitions go (JSON lines, log lines, a
//! progress bar). See [`runyard_core::Event`] for the events and their JSON.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use runyard_core::Event;

/// Receives every job state transition of a run, in order.
pub trait EventSink: Send + Sync {
    /// One transition.
    fn event(&self, event: &Event<'_>);

    /// The run ended: write out anything buffered.
    fn flush(&self) {}
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
