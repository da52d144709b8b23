//! Event sinks: where job state transitions go (JSON lines, log lines, a
//! progress bar). See [`runyard_core::Event`] for the events and their JSON.

use std::fmt;
use std::io::{BufWriter, Write};
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
pub struct JsonLines<W: Write + Send> {
    out: Mutex<BufWriter<W>>,
}

impl<W: Write + Send> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out: Mutex::new(BufWriter::new(out)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<W>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
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
        // A full disk must not stop the run; the report still has everything.
        if serde_json::to_writer(&mut *out, event).is_ok() {
            let _ = out.write_all(b"\n");
        }
    }

    fn flush(&self) {
        let _ = self.lock().flush();
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
