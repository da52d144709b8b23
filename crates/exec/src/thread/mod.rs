//! The thread pool: a fixed pool for `cpu` work, or an elastic one for
//! `blocking` work.
//!
//! One concept, with its tests: the thread pool and its watchdog's use.
//!
//! # How it works
//!
//! Attempts wait in one shared deque. A worker thread takes a chunk of them
//! into its own [`Slot`] (so one lock covers many attempts), runs them one
//! by one, and collects their ends in the slot before handing them to the
//! sink in a batch. An idle thread steals half of another thread's chunk, so
//! a long attempt never keeps short ones waiting behind it.
//!
//! # Protocol: who reports an attempt
//!
//! A slot's `current` is set (under the slot's lock) when an attempt starts.
//! Whoever takes it out of `current` reports the attempt, exactly once: the
//! thread when the task returns, or the watchdog when the attempt times out,
//! or a canceller. When the watchdog or a canceller takes it, the slot is
//! marked abandoned, the attempt's context is cancelled, its unstarted chunk
//! goes back to the shared deque, and a new thread takes the old one's place.
//! The old thread, if its task ever returns, finds `current` empty, drops the
//! result and exits: the run never waits for it.
//!
//! Lock order: the shared lock, then a slot's lock. A thread holding its
//! slot's lock never takes the shared lock.
//!
//! # Threads that cannot start
//!
//! A thread the system refuses (`EAGAIN`: `RLIMIT_NPROC` or memory) costs
//! no attempt: the pool goes on with the threads it has, and its watchdog
//! tries again at each sweep, as long as the pool has fewer threads than it
//! should, so even a pool left without any runs its attempts once threads
//! can be had. The failure is told once on standard error, not per try.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use runyard_core::{CancelToken, Context, Outcome, Registry, Timestamp};

use crate::attempt::{Attempt, AttemptReport, Epoch, Executor, Sink};
use crate::panic::catch_panic;
use crate::spin::spin_until;
use crate::watchdog::{Watchdog, Watched};

/// How a [`ThreadPool`] is shaped.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Thread names are `NAME-N`.
    pub name: String,
    /// Threads kept even when idle.
    pub min_threads: usize,
    /// The most threads at once (not counting abandoned ones).
    pub max_threads: usize,
    /// How long a thread above `min_threads` stays idle before it exits.
    pub keep_alive: Duration,
    /// The most attempts a thread takes at once.
    pub chunk: usize,
    /// Whether an idle thread spins a little before it sleeps (worth it
    /// when attempts are short and come in streams).
    pub spin: bool,
}

impl PoolConfig {
    /// A fixed pool of `threads` threads, for CPU-bound work.
    pub fn fixed(name: &str, threads: usize) -> PoolConfig {
        let threads = threads.max(1);
        PoolConfig {
            name: name.to_string(),
            min_threads: threads,
            max_threads: threads,
            keep_alive: Duration::from_secs(3600),
            chunk: 32,
            spin: true,
        }
    }

    /// An elastic pool of up to `max` threads, one attempt per thread, for
    /// blocking work.
    pub fn elastic(name: &str, max: usize) -> PoolConfig {
        PoolConfig {
            name: name.to_string(),
            min_threads: 0,
            max_threads: max.max(1),
            keep_alive: Duration::from_secs(10),
            chunk: 1,
            spin: false,
        }
    }
}

/// A pool of threads that runs sync attempts. See the module docs.
pub struct ThreadPool {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: PoolConfig,
    registry: Arc<Registry>,
    sink: Arc<dyn Sink>,
    wants_started: bool,
    epoch: Epoch,
    shared: Mutex<Shared>,
    /// `shared.pending.len()`, readable without the lock while spinning.
    pending_hint: AtomicUsize,
    work: Condvar,
    watchdog: Watchdog<SlotDeadline>,
    /// A thread could not be started: the watchdog tries again.
    short: AtomicBool,
}

/// What the watchdog holds of a timed attempt: its thread's slot, and which
/// of the slot's attempts it is.
struct SlotDeadline {
    slot: Weak<Slot>,
    seq: u64,
}

struct Shared {
    pending: VecDeque<Attempt>,
    slots: Vec<Arc<Slot>>,
    /// Threads without work (spinning or asleep).
    idle: usize,
    /// Threads asleep on the condvar.
    sleeping: usize,
    next_id: u64,
    shutdown: bool,
}

/// One worker thread's state.
pub(crate) struct Slot {
    id: u64,
    state: Mutex<SlotState>,
    cancel: CancelToken,
}

struct SlotState {
    local: VecDeque<Attempt>,
    current: Option<Current>,
    done: Vec<AttemptReport>,
    seq: u64,
    abandoned: bool,
}

struct Current {
    token: u64,
    seq: u64,
    started: Instant,
    started_at: Timestamp,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Results older than this are handed over before the next attempt starts.
const FLUSH_AGE: Duration = Duration::from_micros(200);
const FLUSH_LEN: usize = 64;

impl ThreadPool {
    /// A pool running tasks of `registry`, reporting to `sink`. Fails when
    /// its watchdog cannot start, or none of its `min_threads`.
    pub fn new(
        cfg: PoolConfig,
        registry: Arc<Registry>,
        sink: Arc<dyn Sink>,
    ) -> io::Result<ThreadPool> {
        crate::panic::install_panic_hook();
        let wants_started = sink.wants_started();
        let inner = Arc::new(Inner {
            cfg,
            registry,
            sink,
            wants_started,
            epoch: Epoch::now(),
            shared: Mutex::new(Shared {
                pending: VecDeque::new(),
                slots: Vec::new(),
                idle: 0,
                sleeping: 0,
                next_id: 0,
                shutdown: false,
            }),
            pending_hint: AtomicUsize::new(0),
            work: Condvar::new(),
            watchdog: Watchdog::default(),
            short: AtomicBool::new(false),
        });
        let pool = ThreadPool {
            inner: Arc::clone(&inner),
        };
        Watchdog::start(&inner, format!("{}-watchdog", inner.cfg.name))?;
        let mut sh = lock(&inner.shared);
        let mut error = None;
        for _ in 0..inner.cfg.min_threads {
            if let Err(e) = Inner::spawn(&inner, &mut sh) {
                error = Some(e);
                break;
            }
        }
        match error {
            Some(e) if sh.slots.is_empty() => Err(e),
            _ => {
                drop(sh);
                Ok(pool)
            }
        }
    }

    /// Threads alive now (not counting abandoned ones).
    pub fn threads(&self) -> usize {
        lock(&self.inner.shared).slots.len()
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("name", &self.inner.cfg.name)
            .field("threads", &self.threads())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Starts a thread; one that cannot start leaves the pool short, for the
    /// watchdog to try again.
    fn spawn(this: &Arc<Inner>, sh: &mut Shared) -> io::Result<()> {
        sh.next_id += 1;
        let slot = Arc::new(Slot {
            id: sh.next_id,
            state: Mutex::new(SlotState {
                local: VecDeque::new(),
                current: None,
                done: Vec::new(),
                seq: 0,
                abandoned: false,
            }),
            cancel: CancelToken::new(),
        });
        sh.slots.push(Arc::clone(&slot));
        let inner = Arc::clone(this);
        let name = format!("{}-{}", this.cfg.name, slot.id);
        let spawned = match refuse_spawn() {
            Some(e) => Err(e),
            None => std::thread::Builder::new()
                .name(name)
                .spawn(move || inner.run_thread(slot)),
        };
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                // Out of threads: the pool keeps working with the ones it
                // has, and tries again (see the module docs).
                sh.slots.pop();
                if !this.short.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "runyard::engine",
                        "could not start a thread for pool `{}` ({e}); it goes on with {} and \
                         tries again",
                        this.cfg.name,
                        sh.slots.len()
                    );
                }
                Err(e)
            }
        }
    }

    /// The threads the pool should have: its minimum, or as many as there
    /// is work for, up to its maximum.
    fn wanted(&self, sh: &Shared) -> usize {
        let busy = sh.slots.len() - sh.idle;
        (busy + sh.pending.len())
            .min(self.cfg.max_threads)
            .max(self.cfg.min_threads)
    }

    /// After a thread could not start: starts what is missing, if it can.
    fn top_up(this: &Arc<Inner>) {
        if !this.short.load(Ordering::Relaxed) {
            return;
        }
        let mut sh = lock(&this.shared);
        while !sh.shutdown && sh.slots.len() < this.wanted(&sh) {
            if Inner::spawn(this, &mut sh).is_err() {
                return;
            }
        }
        this.short.store(false, Ordering::Relaxed);
        drop(sh);
        this.work.notify_all();
    }

    fn run_thread(self: Arc<Inner>, slot: Arc<Slot>) {
        // When the results held in the slot are to be handed over, by the
        // age of the oldest.
        let mut flush_at: Option<Instant> = None;
        loop {
            let next = {
                let mut st = lock(&slot.state);
                if st.abandoned {
                    return;
                }
                st.local.pop_front()
            };
            let att = match next {
                Some(a) => a,
                None => {
                    self.flush(&slot);
                    flush_at = None;
                    match self.fetch(&slot) {
                        true => continue,
                        false => return,
                    }
                }
            };
            let task = self.registry.task(att.task);
            let started = Instant::now();
            if flush_at.is_some_and(|t| started >= t) {
                self.flush(&slot);
                flush_at = None;
            }
            let started_at = self.epoch.at(started);
            let seq = {
                let mut st = lock(&slot.state);
                st.seq += 1;
                st.current = Some(Current {
                    token: att.token,
                    seq: st.seq,
                    started,
                    started_at,
                });
                st.seq
            };
            // A timeout too long to reach is none.
            if let Some(at) = att.timeout.and_then(|t| started.checked_add(t)) {
                let slot = Arc::downgrade(&slot);
                self.watchdog.watch(SlotDeadline { slot, seq }, at);
            }
            if self.wants_started {
                self.sink.started(att.token, started_at);
            }
            let ctx = Context::new(att.job, att.number, slot.cancel.clone())
                .with_parents(att.parents.clone());
            let result = catch_panic(|| task.run_sync(&att.params, &ctx));
            drop(ctx);
            let ended_at = Instant::now();
            let duration = ended_at.saturating_duration_since(started);
            let ended = match result {
                Ok(Ok(out)) => Outcome::Succeeded(out),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(msg) => Outcome::Panicked(msg),
            };
            let mut st = lock(&slot.state);
            if st.current.take().is_none() {
                // Timed out or cancelled meanwhile: already reported, and a
                // new thread has taken this one's place.
                return;
            }
            st.done.push(AttemptReport {
                token: att.token,
                started_at,
                duration,
                outcome: ended,
            });
            flush_at.get_or_insert(ended_at + FLUSH_AGE);
            if st.done.len() >= FLUSH_LEN {
                let batch = std::mem::replace(&mut st.done, Vec::with_capacity(FLUSH_LEN));
                drop(st);
                self.sink.finished(batch);
                flush_at = None;
            }
        }
    }

    fn flush(&self, slot: &Slot) {
        let batch = {
            let mut st = lock(&slot.state);
            if st.done.is_empty() {
                return;
            }
            std::mem::replace(&mut st.done, Vec::with_capacity(FLUSH_LEN))
        };
        if !batch.is_empty() {
            self.sink.finished(batch);
        }
    }

    /// Fills the slot's chunk from the shared deque or another thread.
    /// Returns false when the thread should exit.
    fn fetch(&self, slot: &Arc<Slot>) -> bool {
        let mut sh = lock(&self.shared);
        let mut idle_since: Option<Instant> = None;
        loop {
            if !sh.pending.is_empty() {
                let threads = sh.slots.len().max(1);
                let n = (sh.pending.len() / threads).clamp(1, self.cfg.chunk);
                let chunk: Vec<Attempt> = sh.pending.drain(..n).collect();
                self.pending_hint.store(sh.pending.len(), Ordering::Relaxed);
                drop(sh);
                let mut st = lock(&slot.state);
                if st.abandoned {
                    drop(st);
                    let mut sh = lock(&self.shared);
                    for a in chunk.into_iter().rev() {
                        sh.pending.push_front(a);
                    }
                    self.pending_hint.store(sh.pending.len(), Ordering::Relaxed);
                    self.work.notify_one();
                    return false;
                }
                st.local.extend(chunk);
                return true;
            }
            if let Some(stolen) = steal(&sh.slots, slot) {
                drop(sh);
                lock(&slot.state).local.extend(stolen);
                return true;
            }
            if sh.shutdown {
                remove_slot(&mut sh, slot);
                return false;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            let waited = since.elapsed();
            if sh.slots.len() > self.cfg.min_threads && waited >= self.cfg.keep_alive {
                remove_slot(&mut sh, slot);
                return false;
            }
            // Spin a little first: work usually comes back within microseconds.
            sh.idle += 1;
            drop(sh);
            let woke =
                self.cfg.spin && spin_until(|| self.pending_hint.load(Ordering::Relaxed) > 0);
            sh = lock(&self.shared);
            if woke || !sh.pending.is_empty() || sh.shutdown {
                sh.idle -= 1;
                continue;
            }
            sh.sleeping += 1;
            sh = match sh.slots.len() > self.cfg.min_threads {
                true => {
                    self.work
                        .wait_timeout(sh, self.cfg.keep_alive - waited)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                false => self.work.wait(sh).unwrap_or_else(|e| e.into_inner()),
            };
            sh.sleeping -= 1;
            sh.idle -= 1;
        }
    }

    /// Takes the running attempt out of `slot` if it is attempt `seq` (or
    /// any attempt, when `seq` is `None`), abandons the slot, and replaces
    /// its thread. Returns what the slot held.
    fn abandon(this: &Arc<Inner>, slot: &Arc<Slot>, seq: Option<u64>) -> Option<Abandoned> {
        let (current, local, done) = {
            let mut st = lock(&slot.state);
            match &st.current {
                Some(c) if seq.is_none_or(|s| s == c.seq) => {}
                _ => return None,
            }
            st.abandoned = true;
            let current = st.current.take().expect("checked");
            (
                current,
                std::mem::take(&mut st.local),
                std::mem::take(&mut st.done),
            )
        };
        slot.cancel.cancel();
        let mut sh = lock(&this.shared);
        remove_slot(&mut sh, slot);
        for a in local.into_iter().rev() {
            sh.pending.push_front(a);
        }
        this.pending_hint.store(sh.pending.len(), Ordering::Relaxed);
        if !sh.shutdown && (sh.slots.len() < this.cfg.min_threads || !sh.pending.is_empty()) {
            // One that cannot start is tried again by the watchdog.
            let _ = Inner::spawn(this, &mut sh);
        }
        drop(sh);
        if !done.is_empty() {
            this.sink.finished(done);
        }
        Some(Abandoned { current })
    }

    fn ended(&self, a: Abandoned, ended: Outcome) {
        self.sink.finished(vec![AttemptReport {
            token: a.current.token,
            started_at: a.current.started_at,
            duration: a.current.started.elapsed(),
            outcome: ended,
        }]);
    }
}

struct Abandoned {
    current: Current,
}

/// How often results held by threads busy with a long attempt are handed over.
const SWEEP: Duration = Duration::from_millis(20);

impl Watched for Inner {
    type Key = SlotDeadline;

    const SWEEP: Option<Duration> = Some(SWEEP);

    fn watchdog(&self) -> &Watchdog<SlotDeadline> {
        &self.watchdog
    }

    /// Takes the attempt from its slot, if it is still running there.
    fn expired(self: &Arc<Inner>, d: SlotDeadline, at: Instant) {
        let Some(slot) = d.slot.upgrade() else {
            return;
        };
        if let Some(a) = Inner::abandon(self, &slot, Some(d.seq)) {
            let timeout = at.saturating_duration_since(a.current.started);
            let ended = if timeout.is_zero() {
                a.current.started.elapsed()
            } else {
                timeout
            };
            self.ended(a, Outcome::TimedOut(ended));
        }
    }

    /// Hands over results held by threads that are busy with a long
    /// attempt, and starts threads that could not start before.
    fn sweep(self: &Arc<Inner>) {
        Inner::top_up(self);
        let slots = lock(&self.shared).slots.clone();
        for s in slots {
            let batch = {
                let mut st = lock(&s.state);
                match &st.current {
                    Some(c) if c.started.elapsed() >= SWEEP && !st.done.is_empty() => {
                        std::mem::take(&mut st.done)
                    }
                    _ => continue,
                }
            };
            self.sink.finished(batch);
        }
    }
}

fn remove_slot(sh: &mut Shared, slot: &Slot) {
    sh.slots.retain(|s| s.id != slot.id);
}

/// Takes half of the largest other chunk.
fn steal(slots: &[Arc<Slot>], me: &Slot) -> Option<Vec<Attempt>> {
    for s in slots.iter().filter(|s| s.id != me.id) {
        let Ok(mut st) = s.state.try_lock() else {
            continue;
        };
        if st.abandoned || st.local.is_empty() {
            continue;
        }
        // The owner is busy with `current`, so its whole chunk is waiting.
        let n = if st.current.is_some() {
            st.local.len().div_ceil(2)
        } else {
            st.local.len() / 2
        };
        if n == 0 {
            continue;
        }
        let keep = st.local.len() - n;
        return Some(st.local.split_off(keep).into_iter().collect());
    }
    None
}

impl Executor for ThreadPool {
    fn submit(&self, batch: Vec<Attempt>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        let mut sh = lock(&self.inner.shared);
        sh.pending.extend(batch);
        self.inner
            .pending_hint
            .store(sh.pending.len(), Ordering::Relaxed);
        let busy = sh.slots.len() - sh.idle;
        let wanted = (busy + sh.pending.len()).min(self.inner.cfg.max_threads);
        while sh.slots.len() < wanted && sh.idle < sh.pending.len() && !sh.shutdown {
            if Inner::spawn(&self.inner, &mut sh).is_err() {
                // Tried again by the watchdog.
                break;
            }
        }
        // Spinning threads find the work themselves; only sleepers need a call.
        let wake = sh.sleeping.min(n);
        drop(sh);
        if wake == 1 {
            self.inner.work.notify_one();
        } else if wake > 1 {
            self.inner.work.notify_all();
        }
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        let mut sh = lock(&self.inner.shared);
        let mut out: Vec<Attempt> = sh.pending.drain(..).collect();
        self.inner.pending_hint.store(0, Ordering::Relaxed);
        for s in &sh.slots {
            out.extend(lock(&s.state).local.drain(..));
        }
        out
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        let slots = {
            let mut sh = lock(&self.inner.shared);
            if let Some(i) = sh.pending.iter().position(|a| a.token == token) {
                let a = sh.pending.remove(i);
                self.inner
                    .pending_hint
                    .store(sh.pending.len(), Ordering::Relaxed);
                return a;
            }
            for s in &sh.slots {
                let mut st = lock(&s.state);
                if let Some(i) = st.local.iter().position(|a| a.token == token) {
                    return st.local.remove(i);
                }
            }
            sh.slots.clone()
        };
        for s in slots {
            let seq = {
                let st = lock(&s.state);
                match &st.current {
                    Some(c) if c.token == token => c.seq,
                    _ => continue,
                }
            };
            if let Some(a) = Inner::abandon(&self.inner, &s, Some(seq)) {
                self.inner.ended(a, Outcome::Cancelled);
            }
            break;
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        let unstarted = self.take_unstarted();
        let slots = lock(&self.inner.shared).slots.clone();
        for s in slots {
            if let Some(a) = Inner::abandon(&self.inner, &s, None) {
                self.inner.ended(a, Outcome::Cancelled);
            }
        }
        let mut rest = self.take_unstarted();
        rest.extend(unstarted);
        rest
    }

    fn running(&self) -> usize {
        let slots = lock(&self.inner.shared).slots.clone();
        slots
            .iter()
            .filter(|s| lock(&s.state).current.is_some())
            .count()
    }

    fn shutdown(&self) {
        lock(&self.inner.shared).shutdown = true;
        self.inner.work.notify_all();
        self.inner.watchdog.stop();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
static REFUSE_SPAWNS: AtomicBool = AtomicBool::new(false);

/// In tests, the system's refusal of a thread, on demand.
fn refuse_spawn() -> Option<io::Error> {
    #[cfg(test)]
    if REFUSE_SPAWNS.load(Ordering::SeqCst) {
        return Some(io::Error::from(io::ErrorKind::WouldBlock));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Receiver, Sender};

    use runyard_core::{JobId, JobParams, Task, TaskDef, TaskError};

    use super::*;

    struct Noop;
    impl Task for Noop {
        const NAME: &'static str = "noop";
        type Params = ();
        type Output = ();
        fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
            Ok(())
        }
    }

    struct Chan(Mutex<Sender<AttemptReport>>);
    impl Sink for Chan {
        fn finished(&self, batch: Vec<AttemptReport>) {
            let tx = lock(&self.0);
            for f in batch {
                let _ = tx.send(f);
            }
        }
    }

    /// While the system refuses threads, an elastic pool left without any
    /// holds its attempts, charging none of them; once threads can be had
    /// again its watchdog starts them and every attempt runs, once.
    #[test]
    fn attempts_wait_for_threads_that_cannot_start_and_run_when_they_can() {
        let reg = Arc::new(
            Registry::builder()
                .task(TaskDef::from_task(Noop))
                .build()
                .unwrap(),
        );
        let (tx, rx): (_, Receiver<AttemptReport>) = channel();
        let pool = ThreadPool::new(
            PoolConfig::elastic("t", 4),
            Arc::clone(&reg),
            Arc::new(Chan(Mutex::new(tx))),
        )
        .unwrap();
        REFUSE_SPAWNS.store(true, Ordering::SeqCst);
        let task = reg.lookup("noop").unwrap();
        pool.submit(
            (1..=8)
                .map(|t| Attempt {
                    token: t,
                    job: JobId(t),
                    number: 1,
                    task,
                    params: JobParams::empty(),
                    timeout: None,
                    parents: None,
                })
                .collect(),
        );
        assert_eq!(pool.threads(), 0, "no thread could start");
        assert!(
            rx.try_recv().is_err(),
            "no attempt is reported (nor charged)"
        );
        REFUSE_SPAWNS.store(false, Ordering::SeqCst);
        let mut tokens: Vec<u64> = (0..8)
            .map(|_| {
                let f = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the attempts run once threads start");
                assert!(
                    matches!(f.outcome, Outcome::Succeeded(_)),
                    "{:?}",
                    f.outcome
                );
                f.token
            })
            .collect();
        tokens.sort();
        assert_eq!(tokens, (1..=8).collect::<Vec<u64>>());
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "each once"
        );
    }
}
