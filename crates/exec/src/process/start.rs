//! Starting a child process: spawning it (see `spawn`) and the handshake
//! (its greeting within `startup_timeout`, then the engine's `Setup`),
//! with a back-off after failed starts.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::process::Child as Process;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{self, FrameReader, FromChild, ToChild, VERSION};
use super::shared::Pool;
use super::shm::Shm;
use super::slot::Slot;
use super::spawn::{spawn, Spawned};
use crate::os::{self, Interest, PollFd};
use crate::reaper;

/// A live child process as its supervisor holds it.
pub(super) struct Child {
    pub(super) process: Process,
    pub(super) pid: u32,
    pub(super) to_child: File,
    pub(super) from_child: File,
    pub(super) reader: FrameReader,
    pub(super) shm: Arc<Shm>,
    /// Attempts it has answered.
    pub(super) jobs: u64,
}

impl Child {
    /// Kills it (and its process group) and reaps it.
    pub(super) fn kill(&mut self) {
        let _ = os::kill_group(self.pid, libc::SIGKILL);
        let _ = self.process.wait();
    }

    /// Whether its resident memory is above `max` bytes.
    pub(super) fn above_rss(&self, max: Option<u64>) -> bool {
        max.is_some_and(|m| os::rss_bytes(self.pid).is_some_and(|rss| rss > m))
    }
}

/// Whether starting a child process failed for want of descriptors,
/// processes or memory (`EMFILE`, `ENFILE`, `EAGAIN`, `ENOMEM`): the
/// system's state, not the jobs', worth trying again.
pub(super) fn for_want_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)
    ) || matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
    )
}

impl Pool {
    /// Starts a child process and does the handshake, after a pause when
    /// starts have failed in a row.
    pub(super) fn start(&self, slot: &Slot) -> io::Result<Child> {
        let failures = self.failures.load(Ordering::Relaxed);
        if failures > 0 {
            // Starting fails (a missing binary, a child that dies at once):
            // back off instead of spinning.
            std::thread::sleep(Duration::from_millis(50u64 << failures.min(6)));
        }
        let r = self.start_once(slot);
        match &r {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(e) => {
                let first = self.failures.fetch_add(1, Ordering::Relaxed) == 0;
                if first && for_want_of_resources(e) {
                    tracing::warn!(
                        target: "runyard::engine",
                        "a worker process cannot start ({e}); its jobs wait, no attempt is \
                         counted, and it is tried again"
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
        let mut child = self.spawn_child(shm, groups.map(|(fds, _)| fds))?;
        self.greeted(&mut child)?;
        let mut buf = Vec::new();
        ToChild::Setup {
            version: VERSION,
            tasks: self.registry.iter().map(|t| t.name().to_string()).collect(),
            report_starts: self.report_starts,
            groups: groups.map(|(_, page)| page),
        }
        .encode(&mut buf);
        if let Err(e) = protocol::write_all(&mut child.to_child, &buf) {
            child.kill();
            return Err(io::Error::other(format!(
                "the worker went away during setup: {e}"
            )));
        }
        Ok(child)
    }

    /// Spawns the program with the page and the reaper's descriptors.
    fn spawn_child(
        &self,
        shm: Arc<Shm>,
        groups: Option<(std::os::fd::RawFd, std::os::fd::RawFd)>,
    ) -> io::Result<Child> {
        let cfg = &self.cfg;
        let Spawned {
            child,
            to_child,
            from_child,
        } = spawn(
            &cfg.program,
            &cfg.args,
            cfg.memory_limit,
            shm.raw_fd(),
            groups,
        )
        .map_err(|e| {
            // Out of descriptors or processes: WouldBlock, try again later.
            let kind = match for_want_of_resources(&e) {
                true => io::ErrorKind::WouldBlock,
                false => e.kind(),
            };
            io::Error::new(kind, format!("cannot start {}: {e}", cfg.program.display()))
        })?;
        Ok(Child {
            pid: child.id(),
            process: child,
            to_child,
            from_child,
            reader: FrameReader::default(),
            shm,
            jobs: 0,
        })
    }

    /// Waits for the child's greeting and checks its protocol version; a
    /// child that fails to greet is killed (or found dead) and reaped.
    fn greeted(&self, child: &mut Child) -> io::Result<()> {
        let hello = read_with_deadline(child, Instant::now() + self.cfg.startup_timeout);
        let msg = match hello {
            Ok(Some(FromChild::Hello { version, .. })) if version == VERSION => return Ok(()),
            Ok(Some(FromChild::Hello { version, .. })) => format!(
                "the worker speaks protocol {version}, the engine {VERSION}: is it the same build?"
            ),
            Ok(Some(other)) => format!("the worker began with {other:?} instead of a greeting"),
            Ok(None) => return Err(self.ended_before_greeting(child)),
            Err(e) => format!("no greeting from the worker: {e}"),
        };
        child.kill();
        Err(io::Error::other(msg))
    }

    /// A child that exited before its greeting, in words, with a hint.
    fn ended_before_greeting(&self, child: &mut Child) -> io::Error {
        let status = child
            .process
            .wait()
            .map(os::describe_exit)
            .unwrap_or_default();
        let program = self.cfg.program.display();
        let hint = match self.cfg.memory_limit {
            Some(b) => format!(
                "is its memory limit of {} MiB too low to start it, or is `{program}` not a runyard binary that enters the worker role?",
                b >> 20
            ),
            None => format!("is `{program}` a runyard binary that enters the worker role?"),
        };
        io::Error::other(format!(
            "the worker {status} before greeting the engine ({hint})"
        ))
    }
}

/// Reads one message from a new child process, within a deadline.
fn read_with_deadline(child: &mut Child, deadline: Instant) -> io::Result<Option<FromChild>> {
    loop {
        if let Some(m) = child.reader.next_from_child().map_err(io::Error::other)? {
            return Ok(Some(m));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        let mut fds = [PollFd::new(child.from_child.as_fd(), Interest::Read)];
        let n = os::poll(&mut fds, Some(left)).unwrap_or(0);
        if n > 0 && !child.reader.fill(&mut child.from_child)? {
            return Ok(None);
        }
    }
}
