//! The dispatcher's mailbox: finished attempts from executors, wake-ups from
//! the queue, interrupts and the end of submissions from the [`Run`](crate::Run).
//!
//! # Wake-up protocol
//!
//! The dispatcher stores `sleeping = true` (SeqCst), then takes the lock and
//! checks for work before it waits on the condvar. A notifier first makes its
//! work visible (`work = true`, SeqCst, or a push under the lock), then reads
//! `sleeping` and, if set, notifies under the lock. In the SeqCst order either
//! the notifier sees `sleeping` and wakes the dispatcher, or the dispatcher's
//! check comes after the work was made visible and it does not sleep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use runyard_core::Timestamp;
use runyard_exec::{AttemptReport, Sink};

/// Records handed to the dispatcher's writer thread, and what became of them.
pub(crate) struct Written {
    pub(crate) records: Vec<runyard_queue::Completion>,
    /// What each record's event needs that the record does not hold.
    pub(crate) notes: Vec<Note>,
    pub(crate) results: Result<Vec<Result<(), runyard_queue::Fenced>>, runyard_queue::QueueError>,
    /// The jobs after these that the written ends moved (see
    /// [`runyard_queue::Cascade`]), when they moved any.
    pub(crate) cascade: Option<Box<runyard_queue::Cascade>>,
}

/// Beside a record: its task and, for a retry, the delay the retry policy
/// chose (the `scheduled` event's `delay_ms`, whenever the event is emitted).
pub(crate) struct Note {
    pub(crate) task: runyard_queue::TaskName,
    pub(crate) delay: Duration,
    /// For a job a schedule made: its schedule and tick, for its events.
    pub(crate) schedule: Option<Box<runyard_core::Tick>>,
    /// The attempt's span, closed once its record is written.
    pub(crate) span: crate::dispatcher::AttemptSpan,
}

#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<Mail>,
    cond: Condvar,
    work: AtomicBool,
    /// Something was put in `state` since the last `take`.
    news: AtomicBool,
    sleeping: AtomicBool,
}

/// What the dispatcher takes out of its inbox in one go.
#[derive(Default)]
pub(crate) struct Mail {
    pub(crate) finished: Vec<AttemptReport>,
    pub(crate) started: Vec<(u64, Timestamp)>,
    pub(crate) interrupts: u32,
    pub(crate) closed: bool,
    /// Records the writer thread has written.
    pub(crate) written: Option<Written>,
}

impl Mail {
    fn has_news(&self) -> bool {
        !self.finished.is_empty() || !self.started.is_empty() || self.written.is_some()
    }
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let _g = self.lock();
            self.cond.notify_one();
        }
    }

    /// New work may be in the queue.
    pub(crate) fn notify_work(&self) {
        // A plain load first: while the dispatcher is busy the flag stays
        // set, and reading it does not take the cache line from it.
        if !self.work.load(Ordering::SeqCst) && !self.work.swap(true, Ordering::SeqCst) {
            self.wake_if_sleeping();
        }
    }

    pub(crate) fn interrupt(&self) {
        self.lock().interrupts += 1;
        self.news.store(true, Ordering::SeqCst);
        self.cond.notify_one();
    }

    /// Interrupts so far (an event sink may interrupt while the dispatcher
    /// writes records: it looks again before it claims more work).
    pub(crate) fn interrupts(&self) -> u32 {
        self.lock().interrupts
    }

    /// The writer thread's batch is written.
    pub(crate) fn written(&self, w: Written) {
        self.lock().written = Some(w);
        self.news.store(true, Ordering::SeqCst);
        self.wake_if_sleeping();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.news.store(true, Ordering::SeqCst);
        self.cond.notify_one();
    }

    /// Moves the news into `into` (keeping `into`'s interrupt count and
    /// `closed` cumulative) and clears the work flag. Returns whether there
    /// was work.
    pub(crate) fn take(&self, into: &mut Mail) -> bool {
        let work = self.work.swap(false, Ordering::SeqCst);
        self.news.store(false, Ordering::SeqCst);
        let mut st = self.lock();
        std::mem::swap(&mut st.finished, &mut into.finished);
        std::mem::swap(&mut st.started, &mut into.started);
        if st.written.is_some() {
            into.written = st.written.take();
        }
        into.interrupts = st.interrupts;
        into.closed = st.closed;
        work
    }

    /// Sleeps until there is news or work, or `timeout` passes.
    pub(crate) fn wait(
        &self,
        spinner: &mut runyard_exec::Spinner,
        timeout: Option<Duration>,
        interrupts_seen: u32,
        closed_seen: bool,
    ) {
        if spinner.spin(|| self.work.load(Ordering::Relaxed) || self.news.load(Ordering::Relaxed)) {
            return;
        }
        self.sleeping.store(true, Ordering::SeqCst);
        let st = self.lock();
        let ready = |m: &Mail| {
            m.has_news()
                || m.interrupts != interrupts_seen
                || m.closed != closed_seen
                || self.work.load(Ordering::SeqCst)
        };
        if !ready(&st) {
            match timeout {
                Some(t) => drop(self.cond.wait_timeout_while(st, t, |m| !ready(m))),
                None => drop(self.cond.wait_while(st, |m| !ready(m))),
            }
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// The executors' [`Sink`]: delivers into the inbox.
pub(crate) struct InboxSink {
    pub(crate) inbox: std::sync::Arc<Inbox>,
    pub(crate) wants_started: bool,
}

impl Sink for InboxSink {
    fn finished(&self, batch: Vec<AttemptReport>) {
        {
            let mut st = self.inbox.lock();
            if st.finished.is_empty() {
                st.finished = batch;
            } else {
                st.finished.extend(batch);
            }
        }
        self.inbox.news.store(true, Ordering::SeqCst);
        self.inbox.wake_if_sleeping();
    }

    fn finished_one(&self, report: AttemptReport) {
        self.inbox.lock().finished.push(report);
        self.inbox.news.store(true, Ordering::SeqCst);
        self.inbox.wake_if_sleeping();
    }

    fn started(&self, token: u64, at: Timestamp) {
        self.inbox.lock().started.push((token, at));
        self.inbox.news.store(true, Ordering::SeqCst);
        self.inbox.wake_if_sleeping();
    }

    fn wants_started(&self) -> bool {
        self.wants_started
    }
}
