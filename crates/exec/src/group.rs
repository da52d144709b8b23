//! A command in a process group of its own, which ends whole.
//!
//! [`CommandGroup::spawn`] starts a command as the leader of a new process
//! group, registered with this process's reaper (see `reaper`) so that the
//! group cannot outlive the runner, even when the runner is killed.
//!
//! # Lifecycle
//!
//! The group ends with its leader: once the leader has exited, what is left
//! of the group (a background grandchild, say) gets SIGKILL, the group is
//! forgotten by the reaper, and only then is the leader reaped. Until that
//! reap the leader's id, which is the group's, cannot be reused, so no
//! signal sent here can reach another process's group. A [`GroupStopper`]
//! ends the group early (a timeout, a cancel): SIGTERM to the whole group at
//! once, SIGKILL after a grace unless the group has ended by then. It checks
//! and signals under the lock that ending the group takes before the reap,
//! for the same reason.
//!
//! The leader's exit can be polled ([`CommandGroup::exit_fd`], a pidfd)
//! beside the command's pipes, so a reader of its output does not wait for
//! the end of pipes that a grandchild may hold open for ever.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::os;
use crate::reaper::{self, Entry};

/// A command that could not be started as a [`CommandGroup`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// The group could not be registered with the reaper (none could be
    /// started, or its table is full): nothing was started.
    Untracked(io::Error),
    /// The command could not start: not found, not executable, a working
    /// directory that cannot be entered, or out of processes.
    Start(io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Untracked(e) => {
                write!(f, "cannot keep track of the command's process group: {e}")
            }
            SpawnError::Start(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Untracked(e) | SpawnError::Start(e) => Some(e),
        }
    }
}

/// What a [`CommandGroup`] and its stoppers share.
#[derive(Debug)]
struct Shared {
    pgid: u32,
    /// Set (under the lock) once the group has been ended, before its
    /// leader is reaped: no signal may be sent to its id from then on.
    ended: Mutex<bool>,
    ended_cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running command, leader of a process group of its own that the
/// reaper knows. See the module docs.
#[derive(Debug)]
pub struct CommandGroup {
    child: Child,
    exit: Option<OwnedFd>,
    shared: Arc<Shared>,
    entry: Option<Entry>,
}

impl CommandGroup {
    /// Starts `cmd` as the leader of a new process group (this sets
    /// `process_group(0)` on it) and registers the group with the reaper.
    pub fn spawn(cmd: &mut Command) -> Result<CommandGroup, SpawnError> {
        let entry = reaper::register().map_err(SpawnError::Untracked)?;
        let child = cmd.process_group(0).spawn().map_err(SpawnError::Start)?;
        let pgid = child.id();
        entry.set(pgid);
        Ok(CommandGroup {
            // Without pidfds (before Linux 5.3), `exit_fd` is `None` and
            // callers check `has_exited` now and then.
            exit: os::pidfd_open(pgid).ok(),
            child,
            shared: Arc::new(Shared {
                pgid,
                ended: Mutex::new(false),
                ended_cv: Condvar::new(),
            }),
            entry: Some(entry),
        })
    }

    /// The leader's pid, which is the group's id.
    pub fn id(&self) -> u32 {
        self.shared.pgid
    }

    /// The command's standard input, if it was piped (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The command's standard output, if it was piped (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The command's standard error, if it was piped (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// A descriptor that becomes readable when the leader exits, to poll
    /// beside the command's pipes; `None` on kernels without pidfds (then
    /// poll with a timeout and ask [`CommandGroup::has_exited`]).
    pub fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.exit.as_ref().map(AsFd::as_fd)
    }

    /// Whether the leader has exited (it is not reaped yet).
    pub fn has_exited(&self) -> io::Result<bool> {
        os::child_exited(self.shared.pgid, false)
    }

    /// Something that ends the group early from elsewhere (a cancellation
    /// callback).
    pub fn stopper(&self) -> GroupStopper {
        GroupStopper {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for the leader to exit, kills what is left of its group,
    /// forgets the group and reaps the leader. Returns how the leader ended.
    pub fn finish(mut self) -> io::Result<ExitStatus> {
        self.end()
    }

    fn end(&mut self) -> io::Result<ExitStatus> {
        // An error here means the leader was reaped elsewhere: its id may be
        // another's already, so it gets no signal.
        let exited = os::child_exited(self.shared.pgid, true);
        {
            let mut ended = self.shared.lock();
            if !*ended {
                if exited.is_ok() {
                    let _ = os::kill_group(self.shared.pgid, libc::SIGKILL);
                }
                *ended = true;
                self.shared.ended_cv.notify_all();
            }
        }
        // The group is gone (or dying of SIGKILL): the reaper may forget it.
        self.entry = None;
        exited?;
        self.child.wait()
    }
}

impl Drop for CommandGroup {
    fn drop(&mut self) {
        if self.entry.is_some() {
            // Not finished (an error on the way): the group must not run on.
            let _ = os::kill_group(self.shared.pgid, libc::SIGKILL);
            let _ = self.end();
        }
    }
}

/// Ends a [`CommandGroup`] early; cheap to clone, and `Send`.
#[derive(Debug, Clone)]
pub struct GroupStopper {
    shared: Arc<Shared>,
}

impl GroupStopper {
    /// SIGTERM to the whole group now, SIGKILL after `grace` unless the
    /// group has ended by then. Returns at once (the grace is waited for
    /// on a thread of its own), so it can be called from a cancellation
    /// callback.
    pub fn stop(&self, grace: Duration) {
        if *self.shared.lock() {
            return;
        }
        let _ = os::kill_group(self.shared.pgid, libc::SIGTERM);
        let shared = Arc::clone(&self.shared);
        let escalate = move || {
            let deadline = Instant::now() + grace;
            let mut ended = shared.lock();
            while !*ended {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // Under the lock: the leader is not reaped meanwhile.
                    let _ = os::kill_group(shared.pgid, libc::SIGKILL);
                    return;
                }
                ended = shared
                    .ended_cv
                    .wait_timeout(ended, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        if std::thread::Builder::new()
            .name("runyard-kill".into())
            .spawn(escalate)
            .is_err()
        {
            // Out of threads: do not leave the group running.
            let ended = self.shared.lock();
            if !*ended {
                let _ = os::kill_group(self.shared.pgid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::Stdio;

    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    /// Whether process `pid` is running (not gone, not a zombie).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
    }

    fn wait_gone(pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(pid) {
            assert!(Instant::now() < deadline, "process {pid} is still running");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_group_ends_with_its_leader() {
        // The leader exits at once; its background grandchild would sleep on.
        let mut c = sh("sleep 3141 >/dev/null & echo $!");
        c.stdout(Stdio::piped());
        let mut g = CommandGroup::spawn(&mut c).unwrap();
        let mut line = String::new();
        g.take_stdout().unwrap().read_to_string(&mut line).ok();
        let status = g.finish().unwrap();
        assert!(status.success());
        wait_gone(line.trim().parse().unwrap());
    }

    #[test]
    fn a_stopper_escalates_past_an_ignored_sigterm() {
        let mut c = sh("trap '' TERM; sleep 3142 & echo $!; wait");
        c.stdout(Stdio::piped());
        let mut g = CommandGroup::spawn(&mut c).unwrap();
        let mut out = g.take_stdout().unwrap();
        let mut buf = [0u8; 32];
        let n = out.read(&mut buf).unwrap();
        let member: u32 = std::str::from_utf8(&buf[..n])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        g.stopper().stop(Duration::from_millis(50));
        let status = g.finish().unwrap();
        assert_eq!(os::exit_parts(status).1.as_deref(), Some("SIGKILL"));
        wait_gone(member);
    }

    #[test]
    fn a_command_that_cannot_start_is_a_start_error() {
        let e = CommandGroup::spawn(&mut Command::new("/no/such/program")).unwrap_err();
        assert!(matches!(&e, SpawnError::Start(io) if io.kind() == io::ErrorKind::NotFound));
    }
}
