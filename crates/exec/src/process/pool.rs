//! The engine's side of `process` mode: the pool of worker processes.
//!
//! Each slot of the pool has a page of the reaper's table (see `reaper`),
//! which its worker processes register their commands in. Whenever a
//! supervisor ends a worker (a timeout, a cancel, a crash, recycling), it
//! ends the commands of that page with it, before it reports anything: a
//! command never outlives the attempt that started it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Child as Process;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runyard_core::{Outcome, Output, Registry, TaskError, Timestamp};
use serde_json::value::RawValue;

use super::protocol::{
    FrameReader, FromChild, ToChild, WireAttempt, WireOutcome, WireResult, VERSION,
};
use super::shm::Shm;
use super::spawn::{spawn, Spawned};
use crate::attempt::{Attempt, AttemptReport, Executor, Sink};
use crate::os;
use crate::reaper::{self, Loan};

/// How a pool of worker processes is started and kept.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The executable to run as a worker (usually this one).
    pub program: PathBuf,
    /// Its arguments (the CLI adds a hidden subcommand; a library binary
    /// that calls `enter_if_child` first thing needs none).
    pub args: Vec<OsString>,
    /// Child processes.
    pub workers: usize,
    /// The most attempts sent to a worker at once.
    pub batch: usize,
    /// Replace a worker after it has run this many attempts.
    pub max_jobs_per_worker: Option<u64>,
    /// Replace a worker whose resident set grows above this many bytes.
    pub max_worker_rss: Option<u64>,
    /// Limit each worker's address space to this many bytes (RLIMIT_AS):
    /// an allocation past it fails, and the attempt with it.
    pub memory_limit: Option<u64>,
    /// After SIGTERM, how long a worker has before SIGKILL.
    pub kill_grace: Duration,
    /// How long a new worker may take to greet the engine.
    pub startup_timeout: Duration,
}

impl ProcessConfig {
    /// Workers that run `program args`, with defaults: one per core,
    /// batches of up to 128, a grace of one second.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> ProcessConfig {
        ProcessConfig {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch: 128,
            max_jobs_per_worker: None,
            max_worker_rss: None,
            memory_limit: None,
            kill_grace: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(30),
        }
    }

    /// Workers that run this executable with no arguments: for a binary
    /// that calls `enter_if_child` first thing in `main`.
    pub fn current_exe() -> io::Result<ProcessConfig> {
        Ok(ProcessConfig::new(
            std::env::current_exe()?,
            Vec::<OsString>::new(),
        ))
    }
}

/// A pool of worker processes that runs sync attempts. See the module docs.
pub struct ProcessPool {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ProcessConfig,
    registry: Arc<Registry>,
    sink: Arc<dyn Sink>,
    shared: Mutex<Shared>,
    work: Condvar,
    slots: Vec<Arc<Slot>>,
    /// Child starts that failed in a row (for backing off).
    failures: AtomicU32,
    /// Whether the sink wants to hear of each start.
    report_starts: bool,
    /// A moving average of attempt durations, in µs: batches help short
    /// attempts and only unbalance long ones.
    avg_us: AtomicU64,
}

/// Above this average attempt duration, attempts go one at a time.
const LONG_ATTEMPT_US: u64 = 1000;

struct Shared {
    pending: VecDeque<Attempt>,
    shutdown: bool,
}

/// One worker process's place in the pool.
struct Slot {
    state: Mutex<SlotState>,
    wake_r: RawFd,
    wake_w: RawFd,
    /// The page of the reaper's table its workers register their commands
    /// in (none when the engine has no reaper: each worker then has its own).
    groups: Option<Loan>,
}

#[derive(Default)]
struct SlotState {
    /// The batch in flight: attempts not yet answered, with their place in
    /// the batch.
    batch: VecDeque<(u64, Attempt)>,
    /// The page shared with the current worker.
    shm: Option<Arc<Shm>>,
    /// The attempt to stop by killing the worker (and report cancelled),
    /// as soon as it is seen running.
    cancel: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    fn new() -> io::Result<Slot> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Slot {
            state: Mutex::new(SlotState::default()),
            wake_r: fds[0],
            wake_w: fds[1],
            // Without a reaper here, each worker starts its own at its
            // first command (and says why, should that fail too).
            groups: reaper::lend().ok(),
        })
    }

    /// Ends the commands a worker of this slot started, once that worker is
    /// gone: what is left of their groups gets SIGKILL.
    fn end_commands(&self) {
        if let Some(g) = &self.groups {
            g.kill_all();
        }
    }

    fn wake(&self) {
        // SAFETY: writing one byte to our own non-blocking pipe; a full pipe
        // already holds a wake-up.
        unsafe { libc::write(self.wake_w, [1u8].as_ptr().cast(), 1) };
    }

    fn drain_wakes(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a local buffer from our own non-blocking pipe.
        while unsafe { libc::read(self.wake_r, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }

    /// Stops the batch in flight: nothing more of it starts. Returns the
    /// attempts that had not started.
    fn stop_batch(st: &mut SlotState) -> Vec<Attempt> {
        let Some(shm) = st.shm.as_ref() else {
            return Vec::new();
        };
        if st.batch.is_empty() {
            return Vec::new();
        }
        let started = shm.stop();
        let mut back = Vec::new();
        st.batch.retain(|(i, a)| {
            if *i < started {
                true
            } else {
                back.push(a.clone());
                false
            }
        });
        back
    }

    /// The index of the attempt running now, if one is.
    fn running(st: &SlotState) -> Option<u64> {
        let (started, finished, _) = st.shm.as_ref()?.progress();
        (started > finished).then(|| started - 1)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: closing the slot's own pipe.
        unsafe {
            libc::close(self.wake_r);
            libc::close(self.wake_w);
        }
    }
}

/// A live worker process as its supervisor holds it.
struct Child {
    process: Process,
    pid: u32,
    to_child: std::fs::File,
    from_child: std::fs::File,
    reader: FrameReader,
    shm: Arc<Shm>,
    jobs: u64,
}

/// Why a worker is gone.
enum Gone {
    Crashed {
        message: String,
        detail: serde_json::Value,
    },
    TimedOut {
        token: u64,
        after: Duration,
    },
    Cancelled {
        token: u64,
    },
}

/// Whether starting a worker failed for want of descriptors, processes or
/// memory (`EMFILE`, `ENFILE`, `EAGAIN`, `ENOMEM`): the system's state, not
/// the jobs', worth trying again.
fn for_want_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)
    ) || matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
    )
}

/// How often a supervisor looks at a batch with timeouts.
fn check_period(min_timeout: Duration) -> Duration {
    (min_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(50))
}

impl ProcessPool {
    /// A pool running tasks of `registry` in worker processes.
    pub fn new(
        cfg: ProcessConfig,
        registry: Arc<Registry>,
        sink: Arc<dyn Sink>,
    ) -> io::Result<ProcessPool> {
        let workers = cfg.workers.max(1);
        let slots = (0..workers)
            .map(|_| Slot::new().map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        let report_starts = sink.wants_started();
        let inner = Arc::new(Inner {
            report_starts,
            cfg,
            registry,
            sink,
            shared: Mutex::new(Shared {
                pending: VecDeque::new(),
                shutdown: false,
            }),
            work: Condvar::new(),
            slots,
            failures: AtomicU32::new(0),
            avg_us: AtomicU64::new(0),
        });
        for (i, slot) in inner.slots.iter().enumerate() {
            let (inner, slot) = (Arc::clone(&inner), Arc::clone(slot));
            std::thread::Builder::new()
                .name(format!("runyard-proc-{i}"))
                .spawn(move || inner.supervise(&slot))?;
        }
        Ok(ProcessPool { inner })
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("program", &self.inner.cfg.program)
            .field("workers", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// A supervisor: keeps one worker process running and feeds it.
    fn supervise(self: Arc<Inner>, slot: &Slot) {
        // Start at once, so the pool is warm when work arrives.
        let mut worker = self.start(slot).ok();
        // Crashes that no running attempt can be blamed for, in a row.
        let mut blameless = 0;
        loop {
            // A worker due for recycling after N jobs gets no more than that.
            let left = match (self.cfg.max_jobs_per_worker, &worker) {
                (Some(max), Some(w)) => max.saturating_sub(w.jobs).max(1) as usize,
                (Some(max), None) => max.max(1) as usize,
                (None, _) => usize::MAX,
            };
            let Some(batch) = self.take_batch(left) else {
                break;
            };
            if worker
                .as_mut()
                .is_some_and(|w| w.process.try_wait().ok().flatten().is_some())
            {
                // It died while idle: nothing of this batch has run.
                worker = None;
                slot.end_commands();
            }
            let mut w = match worker.take() {
                Some(w) => w,
                None => match self.start(slot) {
                    Ok(w) => w,
                    Err(e) if for_want_of_resources(&e) => {
                        // Not the jobs' doing: they wait for a worker, and
                        // `start` tries again after a pause.
                        self.give_back(batch);
                        continue;
                    }
                    Err(e) => {
                        self.fail_batch(batch, &e);
                        continue;
                    }
                },
            };
            match self.run_batch(slot, &mut w, batch) {
                Ok(()) => {
                    blameless = 0;
                    if self.should_recycle(&w) {
                        self.stop(slot, w);
                    } else {
                        worker = Some(w);
                    }
                }
                Err(gone) => {
                    if self.bury(slot, w, gone, blameless >= 3) {
                        blameless = 0;
                    } else {
                        blameless += 1;
                    }
                }
            }
        }
        lock(&slot.state).shm = None;
        if let Some(w) = worker {
            self.stop(slot, w);
        }
    }

    /// The next batch (at most `most` attempts), or `None` when the pool
    /// shuts down.
    fn take_batch(&self, most: usize) -> Option<Vec<Attempt>> {
        let mut sh = lock(&self.shared);
        loop {
            if sh.shutdown {
                return None;
            }
            if !sh.pending.is_empty() {
                let batch = if self.avg_us.load(Ordering::Relaxed) > LONG_ATTEMPT_US {
                    1
                } else {
                    self.cfg.batch.max(1)
                };
                let n = (sh.pending.len() / self.slots.len())
                    .clamp(1, batch)
                    .min(most);
                return Some(sh.pending.drain(..n).collect());
            }
            sh = self.work.wait(sh).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn give_back(&self, attempts: Vec<Attempt>) {
        if attempts.is_empty() {
            return;
        }
        let mut sh = lock(&self.shared);
        for a in attempts.into_iter().rev() {
            sh.pending.push_front(a);
        }
        drop(sh);
        self.work.notify_all();
    }

    /// Starts a worker and does the handshake.
    fn start(&self, slot: &Slot) -> io::Result<Child> {
        let failures = self.failures.load(Ordering::Relaxed);
        if failures > 0 {
            // Starting fails (a missing binary, a worker that dies at once):
            // back off instead of spinning.
            std::thread::sleep(Duration::from_millis(50u64 << failures.min(6)));
        }
        let r = self.start_once(slot);
        match &r {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(e) => {
                let first = self.failures.fetch_add(1, Ordering::Relaxed) == 0;
                if first && for_want_of_resources(e) {
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "runyard: a worker process cannot start ({e}); its jobs wait, no \
                         attempt is counted, and it is tried again"
                    );
                }
            }
        }
        r
    }

    fn start_once(&self, slot: &Slot) -> io::Result<Child> {
        let shm = Arc::new(Shm::create()?);
        let groups = slot
            .groups
            .as_ref()
            .and_then(|g| Some((reaper::handoff()?, g.index())));
        let Spawned {
            child,
            to_child,
            from_child,
        } = spawn(
            &self.cfg.program,
            &self.cfg.args,
            self.cfg.memory_limit,
            shm.raw_fd(),
            groups.map(|(fds, _)| fds),
        )
        .map_err(|e| {
            // Out of descriptors or processes: WouldBlock, try again later.
            let kind = match for_want_of_resources(&e) {
                true => io::ErrorKind::WouldBlock,
                false => e.kind(),
            };
            io::Error::new(
                kind,
                format!("cannot start {}: {e}", self.cfg.program.display()),
            )
        })?;
        let pid = child.id();
        let mut w = Child {
            process: child,
            pid,
            to_child,
            from_child,
            reader: FrameReader::default(),
            shm,
            jobs: 0,
        };
        let hello = read_with_deadline(&mut w, Instant::now() + self.cfg.startup_timeout);
        let fail = |w: &mut Child, msg: String| {
            let _ = os::kill_group(w.pid, libc::SIGKILL);
            let _ = w.process.wait();
            io::Error::other(msg)
        };
        match hello {
            Ok(Some(FromChild::Hello { version, .. })) if version == VERSION => {}
            Ok(Some(FromChild::Hello { version, .. })) => {
                return Err(fail(
                    &mut w,
                    format!("the worker speaks protocol {version}, the engine {VERSION}: is it the same build?"),
                ))
            }
            Ok(Some(other)) => return Err(fail(&mut w, format!("the worker began with {other:?} instead of a greeting"))),
            Ok(None) => {
                let status = w.process.wait().map(os::describe_exit).unwrap_or_default();
                let program = self.cfg.program.display();
                let hint = match self.cfg.memory_limit {
                    Some(b) => format!(
                        "is its memory limit of {} MiB too low to start it, or is `{program}` not a runyard binary that enters the worker role?",
                        b >> 20
                    ),
                    None => format!("is `{program}` a runyard binary that enters the worker role?"),
                };
                return Err(io::Error::other(format!(
                    "the worker {status} before greeting the engine ({hint})"
                )));
            }
            Err(e) => return Err(fail(&mut w, format!("no greeting from the worker: {e}"))),
        }
        let mut buf = Vec::new();
        ToChild::Setup {
            version: VERSION,
            tasks: self.registry.iter().map(|t| t.name().to_string()).collect(),
            report_starts: self.report_starts,
            groups: groups.map(|(_, page)| page),
        }
        .encode(&mut buf);
        if let Err(e) = super::protocol::write_all(&mut w.to_child, &buf) {
            return Err(fail(
                &mut w,
                format!("the worker went away during setup: {e}"),
            ));
        }
        Ok(w)
    }

    /// Every attempt of a batch that could not start, for a reason other
    /// than a want of descriptors, processes or memory: a crash each (they
    /// count, and are retried by their policy; a binary that never starts
    /// makes jobs dead, not a loop).
    fn fail_batch(&self, batch: Vec<Attempt>, e: &io::Error) {
        let now = Timestamp::now();
        self.sink.finished(
            batch
                .into_iter()
                .map(|a| AttemptReport {
                    token: a.token,
                    started_at: now,
                    duration: Duration::ZERO,
                    outcome: Outcome::Crashed {
                        message: format!("no worker process: {e}"),
                        detail: None,
                    },
                })
                .collect(),
        );
    }

    /// Sends a batch and reads its results. `Err` when the worker is gone
    /// (the batch's unanswered attempts are dealt with by `bury`).
    fn run_batch(&self, slot: &Slot, w: &mut Child, batch: Vec<Attempt>) -> Result<(), Gone> {
        let mut buf = Vec::with_capacity(64 * batch.len());
        ToChild::Batch(
            batch
                .iter()
                .map(|a| WireAttempt {
                    token: a.token,
                    task: a.task.0,
                    job: a.job,
                    attempt: a.number,
                    params: a.params.as_json().to_string(),
                })
                .collect(),
        )
        .encode(&mut buf);
        let period = batch
            .iter()
            .filter_map(|a| a.timeout)
            .min()
            .map(check_period);
        w.shm.reset();
        {
            let mut st = lock(&slot.state);
            st.shm = Some(Arc::clone(&w.shm));
            st.batch
                .extend(batch.into_iter().enumerate().map(|(i, a)| (i as u64, a)));
        }
        if let Err(e) = super::protocol::write_all(&mut w.to_child, &buf) {
            // The worker is gone before it could read: nothing of this batch ran.
            let back: Vec<Attempt> = lock(&slot.state).batch.drain(..).map(|(_, a)| a).collect();
            self.give_back(back);
            let status = w.process.wait().map(os::describe_exit).unwrap_or_default();
            return Err(Gone::Crashed {
                message: format!("the worker {status} ({e})"),
                detail: serde_json::Value::Null,
            });
        }
        let (mut starts, mut done) = (Vec::new(), Vec::new());
        loop {
            {
                let mut st = lock(&slot.state);
                if st.batch.is_empty() {
                    return Ok(());
                }
                if let Some(token) = st.cancel {
                    match st.batch.iter().find(|(_, a)| a.token == token) {
                        // Answered meanwhile: nothing to stop.
                        None => st.cancel = None,
                        Some(&(i, _)) if Slot::running(&st) == Some(i) => {
                            st.cancel = None;
                            let back = Slot::stop_batch(&mut st);
                            drop(st);
                            self.give_back(back);
                            return Err(Gone::Cancelled { token });
                        }
                        // Outcome: its result is on its way.
                        Some(_) => {}
                    }
                }
                if let Some((token, after)) = self.timed_out(&st) {
                    return Err(Gone::TimedOut { token, after });
                }
            }
            match poll2(w.from_child.as_raw_fd(), slot.wake_r, period) {
                Ready::Timeout => {}
                Ready::Wake => slot.drain_wakes(),
                Ready::Data => match w.reader.fill(&mut w.from_child) {
                    Ok(true) => {
                        let taken = self.take_results(slot, w, &mut starts, &mut done);
                        // Outside the slot's lock, starts before ends, and
                        // what was read before a bad frame too.
                        for (token, at) in starts.drain(..) {
                            self.sink.started(token, at);
                        }
                        if !done.is_empty() {
                            self.sink.finished(std::mem::take(&mut done));
                        }
                        if let Err(e) = taken {
                            return Err(Gone::Crashed {
                                message: e,
                                detail: serde_json::Value::Null,
                            });
                        }
                        // A worker that grew too big starts nothing more of
                        // this batch; the rest comes back, and it is replaced.
                        if self.too_big(w) {
                            let back = Slot::stop_batch(&mut lock(&slot.state));
                            self.give_back(back);
                        }
                    }
                    Ok(false) | Err(_) => {
                        let status = w.process.wait();
                        let (message, detail) = match status {
                            Ok(s) => {
                                let (code, signal) = os::exit_parts(s);
                                (
                                    format!("the worker process {}", os::describe_exit(s)),
                                    serde_json::json!({"exit_code": code, "signal": signal, "pid": w.pid}),
                                )
                            }
                            Err(e) => (
                                format!("the worker process is gone: {e}"),
                                serde_json::Value::Null,
                            ),
                        };
                        return Err(Gone::Crashed { message, detail });
                    }
                },
            }
        }
    }

    /// The running attempt and its timeout, if it has passed.
    fn timed_out(&self, st: &SlotState) -> Option<(u64, Duration)> {
        let shm = st.shm.as_ref()?;
        let (started, finished, started_us) = shm.progress();
        if started <= finished {
            return None;
        }
        let (_, a) = st.batch.iter().find(|(i, _)| *i == started - 1)?;
        let t = a.timeout?;
        let ran = Timestamp::now().since(Timestamp::from_micros(started_us));
        (ran >= t).then_some((a.token, t))
    }

    /// Turns the results that have arrived into reports.
    fn take_results(
        &self,
        slot: &Slot,
        w: &mut Child,
        starts: &mut Vec<(u64, Timestamp)>,
        done: &mut Vec<AttemptReport>,
    ) -> Result<(), String> {
        let mut st = lock(&slot.state);
        loop {
            let r = match w.reader.next_from_worker() {
                Ok(Some(FromChild::Result(r))) => r,
                Ok(Some(FromChild::Started { token, at })) => {
                    if st.batch.iter().any(|(_, a)| a.token == token) {
                        starts.push((token, at));
                    }
                    continue;
                }
                Ok(Some(other)) => return Err(format!("protocol error: unexpected {other:?}")),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            // A result for an attempt taken back meanwhile is dropped.
            let Some(pos) = st.batch.iter().position(|(_, a)| a.token == r.token) else {
                continue;
            };
            let (_, a) = st.batch.remove(pos).expect("found");
            w.jobs += 1;
            let avg = self.avg_us.load(Ordering::Relaxed);
            self.avg_us
                .store(avg - avg / 8 + r.duration_us / 8, Ordering::Relaxed);
            let (started_at, duration, ended) = to_ended(r);
            done.push(AttemptReport {
                token: a.token,
                started_at,
                duration,
                outcome: ended,
            });
        }
    }

    /// A worker is gone (crashed, timed out, or killed to cancel): report
    /// its running attempt and run the rest of its batch elsewhere. With
    /// nothing running to blame, the batch's first attempt is blamed only
    /// when `blame_first` (crashes outside attempts, again and again, must
    /// not loop). Returns whether an attempt was blamed.
    fn bury(&self, slot: &Slot, mut w: Child, gone: Gone, blame_first: bool) -> bool {
        // Nothing more starts, whatever the worker is doing.
        w.shm.stop();
        let target = match gone {
            Gone::TimedOut { token, .. } | Gone::Cancelled { token } => {
                self.end_gracefully(slot, &mut w);
                Some(token)
            }
            Gone::Crashed { .. } => {
                let _ = os::kill_group(w.pid, libc::SIGKILL);
                let _ = w.process.wait();
                slot.end_commands();
                None
            }
        };
        let (started, finished, started_us) = w.shm.progress();
        let running = (started > finished).then(|| started - 1);
        let mut rest: VecDeque<(u64, Attempt)> = {
            let mut st = lock(&slot.state);
            st.cancel = None;
            st.shm = None;
            st.batch.drain(..).collect()
        };
        // A timeout or a cancel names its attempt (it may have ended in the
        // moment before the kill: its result died with the worker); a crash
        // is the running attempt's.
        let blamed = match target {
            Some(token) => rest.iter().position(|(_, a)| a.token == token),
            None => running.and_then(|r| rest.iter().position(|(i, _)| *i == r)),
        };
        let blamed = match blamed {
            Some(pos) => rest.remove(pos),
            None if blame_first => rest.pop_front(),
            None => None,
        };
        if let Some((_, a)) = &blamed {
            let started_at = Timestamp::from_micros(started_us);
            let ended = match gone {
                Gone::Crashed { message, detail } => Outcome::Crashed {
                    message,
                    detail: (!detail.is_null())
                        .then(|| serde_json::value::to_raw_value(&detail).ok())
                        .flatten(),
                },
                Gone::TimedOut { after, .. } => Outcome::TimedOut(after),
                Gone::Cancelled { .. } => Outcome::Cancelled,
            };
            self.sink.finished(vec![AttemptReport {
                token: a.token,
                started_at,
                duration: Timestamp::now().since(started_at),
                outcome: ended,
            }]);
        }
        // Not started, or ended with a result that died with the worker:
        // they run again elsewhere.
        self.give_back(rest.into_iter().map(|(_, a)| a).collect());
        blamed.is_some()
    }

    fn should_recycle(&self, w: &Child) -> bool {
        self.cfg.max_jobs_per_worker.is_some_and(|m| w.jobs >= m) || self.too_big(w)
    }

    /// Whether a worker's resident memory is above `max_worker_rss`.
    fn too_big(&self, w: &Child) -> bool {
        self.cfg
            .max_worker_rss
            .is_some_and(|m| os::rss_bytes(w.pid).is_some_and(|rss| rss > m))
    }

    /// Ends a worker that is running an attempt, with the commands it
    /// started: SIGTERM to the worker's process group and to theirs, then,
    /// after the grace, SIGKILL to whatever is left of any of them.
    fn end_gracefully(&self, slot: &Slot, w: &mut Child) {
        let deadline = Instant::now() + self.cfg.kill_grace;
        if let Some(g) = &slot.groups {
            g.signal_all(libc::SIGTERM);
        }
        let _ = os::stop_group(&mut w.process, self.cfg.kill_grace);
        // The worker is gone (it seldom outlives a SIGTERM); its commands
        // have what is left of the grace.
        if let Some(g) = &slot.groups {
            while g.any_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        slot.end_commands();
    }

    /// Asks a worker to exit, and makes sure it does, and that nothing it
    /// started is left.
    fn stop(&self, slot: &Slot, mut w: Child) {
        let mut b = Vec::new();
        ToChild::Shutdown.encode(&mut b);
        let _ = super::protocol::write_all(&mut w.to_child, &b);
        let deadline = Instant::now() + self.cfg.kill_grace;
        let exited = loop {
            if let Ok(Some(_)) = w.process.try_wait() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !exited {
            let _ = os::stop_group(&mut w.process, Duration::ZERO);
        }
        slot.end_commands();
    }
}

/// A result as the sink takes it.
fn to_ended(r: WireResult) -> (Timestamp, Duration, Outcome) {
    let duration = Duration::from_micros(r.duration_us);
    let ended = match r.outcome {
        WireOutcome::Succeeded(text) => match Output::from_json(&text) {
            Ok(out) => Outcome::Succeeded(out),
            Err(e) => Outcome::Failed(TaskError::permanent(format!(
                "the worker sent an unreadable output: {e}"
            ))),
        },
        WireOutcome::Failed {
            intent,
            message,
            detail,
        } => {
            let mut e = TaskError::with_intent(intent, message);
            if let Some(raw) = detail.and_then(|d| RawValue::from_string(d).ok()) {
                e = e.with_detail(&raw);
            }
            Outcome::Failed(e)
        }
        WireOutcome::Panicked(m) => Outcome::Panicked(m),
    };
    (r.started_at, duration, ended)
}

enum Ready {
    Data,
    Wake,
    Timeout,
}

/// Waits until the worker's pipe or the wake pipe is readable.
fn poll2(data: RawFd, wake: RawFd, timeout: Option<Duration>) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: data,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.map_or(-1, |t| t.as_millis().clamp(1, i32::MAX as u128) as i32);
    loop {
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return Ready::Timeout;
        }
        if fds[0].revents != 0 {
            return Ready::Data;
        }
        return Ready::Wake;
    }
}

/// Reads one message from a new worker, within a deadline.
fn read_with_deadline(w: &mut Child, deadline: Instant) -> io::Result<Option<FromChild>> {
    loop {
        if let Some(m) = w.reader.next_from_worker().map_err(io::Error::other)? {
            return Ok(Some(m));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        let mut pfd = libc::pollfd {
            fd: w.from_child.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe {
            libc::poll(
                &mut pfd,
                1,
                left.as_millis().clamp(1, i32::MAX as u128) as i32,
            )
        };
        if n > 0 && !w.reader.fill(&mut w.from_child)? {
            return Ok(None);
        }
    }
}

impl Executor for ProcessPool {
    fn submit(&self, batch: Vec<Attempt>) {
        if batch.is_empty() {
            return;
        }
        lock(&self.inner.shared).pending.extend(batch);
        self.inner.work.notify_all();
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        let mut out: Vec<Attempt> = lock(&self.inner.shared).pending.drain(..).collect();
        for slot in &self.inner.slots {
            out.extend(Slot::stop_batch(&mut lock(&slot.state)));
        }
        out
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        {
            let mut sh = lock(&self.inner.shared);
            if let Some(i) = sh.pending.iter().position(|a| a.token == token) {
                return sh.pending.remove(i);
            }
        }
        for slot in &self.inner.slots {
            let mut st = lock(&slot.state);
            let Some(&(idx, _)) = st.batch.iter().find(|(_, a)| a.token == token) else {
                continue;
            };
            // Nothing more of this batch starts; then either it is running
            // (its worker is stopped), or it never started (given back).
            let mut back = Slot::stop_batch(&mut st);
            let mine = back
                .iter()
                .position(|a| a.token == token)
                .map(|i| back.remove(i));
            if mine.is_none() && Slot::running(&st) == Some(idx) {
                st.cancel = Some(token);
                drop(st);
                slot.wake();
            } else {
                drop(st);
            }
            self.inner.give_back(back);
            return mine;
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        let mut out = self.take_unstarted();
        for slot in &self.inner.slots {
            let mut st = lock(&slot.state);
            out.extend(Slot::stop_batch(&mut st));
            let running = Slot::running(&st)
                .and_then(|r| st.batch.iter().find(|(i, _)| *i == r))
                .map(|(_, a)| a.token);
            if let Some(token) = running {
                st.cancel = Some(token);
                drop(st);
                slot.wake();
            }
        }
        out
    }

    fn running(&self) -> usize {
        let running = |st: &SlotState| {
            Slot::running(st).is_some_and(|r| st.batch.iter().any(|(i, _)| *i == r))
        };
        self.inner
            .slots
            .iter()
            .filter(|slot| running(&lock(&slot.state)))
            .count()
    }

    fn shutdown(&self) {
        lock(&self.inner.shared).shutdown = true;
        self.inner.work.notify_all();
        for slot in &self.inner.slots {
            slot.wake();
        }
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
