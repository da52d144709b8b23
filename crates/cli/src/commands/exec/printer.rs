//! Printing what the commands of `runyard exec` wrote: each ended job's
//! output whole, from its spool, as jobs end (in input order with
//! `--keep-order`); the job log; halting; stopping when standard output is
//! gone.
//!
//! The engine's events reach [`Printer`] (an event sink, on the engine's
//! threads); it passes the id of each ended job to the printing thread
//! ([`print_outputs`]) and halts the run when `--halt` asks. The printing
//! thread alone writes standard output (runyard's own messages go to
//! standard error), so one job's output is never interleaved with
//! another's. It copies a buffer at a time: memory stays bounded whatever
//! a command prints.
//!
//! Write failures: standard output closed under it (`| head`: EPIPE) stops
//! the run as GNU parallel stops: no job starts any more, running ones are
//! cancelled, nothing more is printed, and `exec` exits 141. Any other
//! failure to write standard output (a full disk) stops the run the same
//! way and is reported (exit code 3). A spool that cannot be read back, or
//! standard error or the job log failing, is reported when the run ends
//! (exit code 3); the run goes on.
//!
//! Read-ahead: the jobs' inputs are read as the run needs them. [`Window`]
//! holds the [`Meta`] of every job made and not yet printed, and makes the
//! reader wait while it holds its limit: with `--keep-order`, the jobs
//! waiting behind a slow one count too, so the out-of-order window is
//! bounded by the same limit. Nothing of a job stays in `exec` once its
//! output is printed.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Condvar, Mutex, OnceLock};

use runyard::event::{Event, EventSink};
use runyard::queue::{MemoryQueue, Queue};
use runyard::{JobId, JobState};

use super::joblog::Joblog;
use super::spool::{Held, Spools};
use crate::exit::RunnerFailure;
use crate::output::report::io_message;

/// What `--halt` does on the first job that ends dead: `soon` starts no
/// more jobs; `now` also cancels the running ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Halt {
    Soon,
    Now,
}

/// What the printer knows of each job, by job number.
#[derive(Debug)]
pub(super) struct Meta {
    /// The job's inputs, separated by spaces (its `--tag`, and its name in
    /// messages).
    pub(super) input: String,
    /// The command line, for the job log.
    pub(super) command: String,
}

/// The jobs made and not yet printed, by job number, and the reader's
/// wait for room (see the module comment).
pub(super) struct Window {
    limit: u64,
    state: Mutex<WindowState>,
    room: Condvar,
}

#[derive(Default)]
struct WindowState {
    metas: HashMap<u64, Meta>,
    /// The run stopped (interrupted, halted, standard output gone): no
    /// more jobs are made.
    stopped: bool,
    /// The most metas held at once.
    most_held: usize,
}

impl Window {
    /// A window that holds at most `limit` jobs (at least 1).
    pub(super) fn new(limit: u64) -> Window {
        Window {
            limit: limit.max(1),
            state: Mutex::new(WindowState::default()),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a job made, until it is printed.
    pub(super) fn add(&self, id: u64, meta: Meta) {
        let mut st = self.lock();
        st.metas.insert(id, meta);
        st.most_held = st.most_held.max(st.metas.len());
    }

    /// Gives a job's meta back as it is printed, making room.
    fn take(&self, id: u64) -> Option<Meta> {
        let meta = self.lock().metas.remove(&id);
        self.room.notify_all();
        meta
    }

    /// No more jobs are to be made.
    pub(super) fn stop(&self) {
        self.lock().stopped = true;
        self.room.notify_all();
    }

    /// Waits until fewer than the limit are held; how many more may be
    /// made, or `None` once the run stopped.
    pub(super) fn wait_for_room(&self) -> Option<u64> {
        let mut st = self.lock();
        loop {
            if st.stopped {
                return None;
            }
            let held = st.metas.len() as u64;
            if held < self.limit {
                return Some(self.limit - held);
            }
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the run stopped: no more jobs are made.
    pub(super) fn stopped(&self) -> bool {
        self.lock().stopped
    }

    /// The most jobs held at once so far.
    pub(super) fn most_held(&self) -> usize {
        self.lock().most_held
    }

    /// The limit.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }
}

/// Forwards ended jobs to the printing thread and halts the run when asked.
pub(super) struct Printer {
    pub(super) tx: Mutex<Sender<JobId>>,
    pub(super) halt: Option<Halt>,
    pub(super) halted: AtomicBool,
    pub(super) interrupt: OnceLock<Box<dyn Fn() + Send + Sync>>,
    pub(super) window: std::sync::Arc<Window>,
}

impl EventSink for Printer {
    fn event(&self, e: &Event<'_>) {
        let (job, dead) = match e {
            Event::Succeeded { job, .. } | Event::Cancelled { job, .. } => (*job, false),
            Event::Dead { job, .. } => (*job, true),
            _ => return,
        };
        let _ = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        if dead && self.halt.is_some() && !self.halted.swap(true, Ordering::SeqCst) {
            self.window.stop();
            if let Some(interrupt) = self.interrupt.get() {
                interrupt();
                if self.halt == Some(Halt::Now) {
                    interrupt();
                }
            }
        }
    }
}

/// How the printing thread prints.
pub(super) struct Printing<'a> {
    pub(super) queue: &'a dyn Queue,
    /// The queue, when it forgets each job its readers read: told of each
    /// job once its record is read.
    pub(super) forget: Option<&'a MemoryQueue>,
    pub(super) spools: &'a Spools,
    pub(super) window: &'a Window,
    pub(super) keep_order: bool,
    pub(super) tag: bool,
    pub(super) joblog: Option<Joblog>,
    /// Starts no more jobs and cancels the running ones.
    pub(super) stop: Box<dyn Fn() + Send + 'a>,
}

/// What the printer leaves for the end.
#[derive(Debug, Default)]
pub(super) struct Printed {
    /// A line per dead job.
    pub(super) dead: Vec<String>,
    /// Standard output was closed under the run.
    pub(super) stdout_closed: bool,
    /// Outputs that could not be written or read back, each said once.
    pub(super) failures: Vec<RunnerFailure>,
}

/// A copy that failed: reading the spool, or writing the output.
#[derive(Debug)]
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

const BUFFER: usize = 64 * 1024;

/// Copies `from` to `to` a buffer at a time, starting each line with `tag`
/// when there is one (`at_line_start` carries across calls). Returns the
/// bytes read.
fn copy(
    from: &mut dyn Read,
    to: &mut dyn Write,
    tag: Option<&[u8]>,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    let mut at_line_start = true;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        total += n as u64;
        let chunk = &buf[..n];
        let Some(tag) = tag else {
            to.write_all(chunk).map_err(CopyError::Write)?;
            continue;
        };
        let mut rest = chunk;
        while !rest.is_empty() {
            if at_line_start {
                to.write_all(tag).map_err(CopyError::Write)?;
            }
            let (line, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => rest.split_at(i + 1),
                None => (rest, &[][..]),
            };
            to.write_all(line).map_err(CopyError::Write)?;
            at_line_start = line.ends_with(b"\n");
            rest = next;
        }
    }
}

/// The printing thread's state.
struct State<'a> {
    p: Printing<'a>,
    out: Printed,
    buf: Vec<u8>,
    /// Standard output failed or was closed: nothing more is printed.
    stdout_gone: bool,
    stderr_failed: bool,
}

/// Prints each ended job's output as its id arrives (with `--keep-order`,
/// once the jobs ahead of it are printed), until the run ends (the sender
/// is dropped). A job's output stays with [`Spools`] until it is printed.
pub(super) fn print_outputs(rx: Receiver<JobId>, p: Printing<'_>) -> Printed {
    let keep_order = p.keep_order;
    let mut st = State {
        p,
        out: Printed::default(),
        buf: vec![0; BUFFER],
        stdout_gone: false,
        stderr_failed: false,
    };
    let mut ended: BTreeSet<u64> = BTreeSet::new();
    let mut next = 1u64;
    for id in rx {
        if !keep_order {
            st.emit(id.0);
            continue;
        }
        ended.insert(id.0);
        while ended.remove(&next) {
            st.emit(next);
            next += 1;
        }
    }
    // Jobs that never ended (an interrupted run) leave gaps: print the rest.
    for id in std::mem::take(&mut ended) {
        st.emit(id);
    }
    if let Some(failed) = st.p.joblog.take().and_then(Joblog::finish) {
        st.out.failures.push(failed);
    }
    st.out
}

impl State<'_> {
    fn failed_to_read(&mut self, id: u64, input: &str, e: &io::Error) {
        self.out.failures.push(RunnerFailure(format!(
            "job {id} (`{input}`): its output could not be read back from its spool file: {}",
            io_message(e)
        )));
    }

    /// Prints one ended job's output and writes its job log line.
    fn emit(&mut self, id: u64) {
        let meta = self.p.window.take(id).unwrap_or(Meta {
            input: String::new(),
            command: String::new(),
        });
        let tag = self.p.tag.then(|| {
            let mut t = meta.input.clone().into_bytes();
            t.push(b'\t');
            t
        });
        let (receive, copied) = match self.p.spools.take(JobId(id)) {
            Held::None => (0, Ok(())),
            Held::Lost(e) => (0, Err(Failed::Read(e))),
            Held::Spool(s) => {
                let receive = s.out.metadata().map_or(0, |m| m.len());
                let copied = print_job(
                    &mut &s.out,
                    &mut &s.err,
                    tag,
                    &mut self.buf,
                    self.stdout_gone,
                );
                (receive, copied)
            }
            Held::Moved(at, file) => {
                let (mut o, mut e) = at.readers(&file);
                let copied = print_job(&mut o, &mut e, tag, &mut self.buf, self.stdout_gone);
                if let Err(e) = self.p.spools.release() {
                    self.failed_to_read(id, &meta.input, &e);
                }
                (at.out_len(), copied)
            }
        };
        if let Err(e) = copied {
            self.failed(id, &meta, e);
        }
        self.record(id, &meta, receive);
    }

    fn failed(&mut self, id: u64, meta: &Meta, f: Failed) {
        match f {
            Failed::Read(e) => self.failed_to_read(id, &meta.input, &e),
            Failed::Stdout(e) => {
                self.stdout_gone = true;
                if e.kind() == io::ErrorKind::BrokenPipe {
                    self.out.stdout_closed = true;
                } else {
                    self.out.failures.push(RunnerFailure(format!(
                        "standard output: {}; the run was stopped",
                        io_message(&e)
                    )));
                }
                self.p.window.stop();
                (self.p.stop)();
            }
            Failed::Stderr(e) => {
                if !self.stderr_failed {
                    self.stderr_failed = true;
                    self.out
                        .failures
                        .push(RunnerFailure(format!("standard error: {}", io_message(&e))));
                }
            }
        }
    }

    /// Reads job `id`'s record for its line of the job log and its dead
    /// message, then tells a forgetting queue it is read.
    fn record(&mut self, id: u64, meta: &Meta, receive: u64) {
        self.read_record(id, meta, receive);
        if let Some(q) = self.p.forget {
            q.reported(&[JobId(id)]);
        }
    }

    fn read_record(&mut self, id: u64, meta: &Meta, receive: u64) {
        let view = match self.p.queue.inspect().and_then(|q| q.get(JobId(id))) {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                self.out
                    .failures
                    .push(RunnerFailure(format!("job {id}: reading its record: {e}")));
                return;
            }
        };
        if view.state == JobState::Dead {
            self.out.dead.push(format!(
                "runyard: job {id} (`{}`) dead after {} attempt(s): {}",
                meta.input,
                view.attempts.len(),
                view.last_error().unwrap_or("")
            ));
        }
        if let Some(log) = &mut self.p.joblog {
            log.record(&view, &meta.command, receive);
        }
    }
}

/// How printing one job failed.
#[derive(Debug)]
enum Failed {
    Read(io::Error),
    Stdout(io::Error),
    Stderr(io::Error),
}

/// Copies one job's standard output to ours (unless it is gone), then its
/// standard error to ours.
fn print_job(
    out: &mut dyn Read,
    err: &mut dyn Read,
    tag: Option<Vec<u8>>,
    buf: &mut [u8],
    stdout_gone: bool,
) -> Result<(), Failed> {
    if stdout_gone {
        return Ok(());
    }
    let tag = tag.as_deref();
    {
        let stdout = io::stdout();
        let mut o = BufWriter::with_capacity(BUFFER, stdout.lock());
        copy(out, &mut o, tag, buf).map_err(|e| match e {
            CopyError::Read(e) => Failed::Read(e),
            CopyError::Write(e) => Failed::Stdout(e),
        })?;
        o.flush().map_err(Failed::Stdout)?;
    }
    let stderr = io::stderr();
    let mut e = stderr.lock();
    copy(err, &mut e, tag, buf).map_err(|e| match e {
        CopyError::Read(e) => Failed::Read(e),
        CopyError::Write(e) => Failed::Stderr(e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::mpsc::channel;
    use std::sync::Arc;

    use runyard::queue::MemoryQueue;

    use super::super::spool::Spool;
    use super::*;

    #[test]
    fn a_spool_that_cannot_be_read_back_is_reported_with_its_job() {
        let spools = Spools::new(16);
        let mut spool = Spool::new(1).unwrap();
        // The same file opened for writing only: reading it back fails.
        spool.out = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", spool.out.as_raw_fd()))
            .unwrap();
        spools.started(JobId(1), Arc::new(spool));
        spools.ended(JobId(1), 1);
        let queue = MemoryQueue::new();
        let window = Window::new(4);
        window.add(
            1,
            Meta {
                input: "in put".into(),
                command: "cat 'in put'".into(),
            },
        );
        let (tx, rx) = channel();
        tx.send(JobId(1)).unwrap();
        drop(tx);
        let printed = print_outputs(
            rx,
            Printing {
                queue: &queue,
                forget: None,
                spools: &spools,
                window: &window,
                keep_order: false,
                tag: false,
                joblog: None,
                stop: Box::new(|| {}),
            },
        );
        assert_eq!(printed.failures.len(), 1, "{:?}", printed.failures);
        assert!(
            printed.failures[0]
                .0
                .starts_with("job 1 (`in put`): its output could not be read back"),
            "{}",
            printed.failures[0]
        );
    }

    /// Yields `chunks`, then fails.
    struct Chunks(Vec<&'static [u8]>, Option<io::ErrorKind>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return match self.1 {
                    Some(k) => Err(io::Error::from(k)),
                    None => Ok(0),
                };
            }
            let c = self.0.remove(0);
            buf[..c.len()].copy_from_slice(c);
            Ok(c.len())
        }
    }

    /// Keeps what it is given, and the largest write it was asked for.
    struct Keeps {
        got: Vec<u8>,
        largest_write: usize,
    }

    impl Write for Keeps {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.largest_write = self.largest_write.max(buf.len());
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tags_start_every_line_across_chunks_and_never_end_the_output() {
        let mut to = Keeps {
            got: Vec::new(),
            largest_write: 0,
        };
        let mut from = Chunks(vec![b"one\ntw", b"o\n", b"\nthr", b"ee"], None);
        let n = copy(&mut from, &mut to, Some(b"in\t"), &mut [0; 16]).unwrap();
        assert_eq!(n, 14);
        assert_eq!(
            String::from_utf8(to.got).unwrap(),
            "in\tone\nin\ttwo\nin\t\nin\tthree"
        );
    }

    #[test]
    fn copying_holds_one_buffer_whatever_the_size() {
        let mut to = Keeps {
            got: Vec::new(),
            largest_write: 0,
        };
        let big = vec![b'y'; 1 << 20];
        let n = copy(&mut &big[..], &mut to, None, &mut [0u8; 512]).unwrap();
        assert_eq!(n, 1 << 20);
        assert_eq!(to.got.len(), 1 << 20);
        assert_eq!(to.largest_write, 512, "a buffer at a time");
    }

    #[test]
    fn read_and_write_failures_are_told_apart() {
        let mut from = Chunks(vec![b"abc"], Some(io::ErrorKind::Other));
        let mut to = Keeps {
            got: Vec::new(),
            largest_write: 0,
        };
        match copy(&mut from, &mut to, None, &mut [0; 8]) {
            Err(CopyError::Read(e)) => assert_eq!(e.kind(), io::ErrorKind::Other),
            other => panic!("{other:?}"),
        }
        assert_eq!(to.got, b"abc");
        let mut full: &mut [u8] = &mut [0u8; 2];
        match copy(&mut &b"abc"[..], &mut full, None, &mut [0; 8]) {
            Err(CopyError::Write(e)) => assert_eq!(e.kind(), io::ErrorKind::WriteZero),
            other => panic!("{other:?}"),
        }
    }
}
