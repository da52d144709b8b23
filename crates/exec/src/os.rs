//! Operating-system helpers for running processes: signal names, exit
//! statuses as outcomes, ending a process group (SIGTERM, then SIGKILL),
//! waiting for a child's exit without reaping it, the parent-death signal,
//! an address-space limit, and the resident size of a process. The worker
//! processes of `process` mode and the `shell` task are built on them.
//! Linux (pidfds, the parent-death signal and `/proc` are Linux's; the rest
//! is Unix).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ExitStatus};
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;

/// The signals with names of their own.
const SIGNALS: [(i32, &str); 22] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGSYS, "SIGSYS"),
];

/// The name of a signal, e.g. `SIGSEGV` for 11 (`signal 40` for one
/// without a name).
pub fn signal_name(sig: i32) -> String {
    match SIGNALS.iter().find(|(n, _)| *n == sig) {
        Some((_, name)) => name.to_string(),
        None => format!("signal {sig}"),
    }
}

/// The number of a signal from its [`signal_name`].
pub fn signal_number(name: &str) -> Option<i32> {
    match SIGNALS.iter().find(|(_, n)| *n == name) {
        Some((sig, _)) => Some(*sig),
        None => name.strip_prefix("signal ")?.parse().ok(),
    }
}

/// How a process ended: `(exit code, signal name)`, one of them set.
pub fn exit_parts(status: ExitStatus) -> (Option<i32>, Option<String>) {
    match (status.code(), status.signal()) {
        (Some(c), _) => (Some(c), None),
        (None, Some(s)) => (None, Some(signal_name(s))),
        (None, None) => (None, None),
    }
}

/// `exited with code 3` or `killed by signal SIGSEGV`.
pub fn describe_exit(status: ExitStatus) -> String {
    match exit_parts(status) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => format!("ended with status {status}"),
    }
}

/// Sends `sig` to every process of group `pgid`.
pub fn kill_group(pgid: u32, sig: i32) -> io::Result<()> {
    let pgid =
        libc::pid_t::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: killpg takes plain integers and has no memory effects.
    if unsafe { libc::killpg(pgid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ends `child`, the leader of its own process group (started with
/// `process_group(0)`), and its group: SIGTERM to the group, SIGKILL when
/// the leader has not exited after `grace`, and SIGKILL to what is left of
/// the group once it has (a member that outlived its leader). Waits for the
/// leader and returns how it ended.
pub fn stop_group(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let pgid = child.id();
    let _ = kill_group(pgid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = kill_group(pgid, libc::SIGKILL);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The leader's id stays reserved while its group has members, so this
    // reaches only stragglers of this group.
    let _ = kill_group(pgid, libc::SIGKILL);
    Ok(status)
}

/// A descriptor that becomes readable when process `pid` exits (a pidfd,
/// Linux 5.3): something to `poll` beside a child's pipes. The process is
/// not reaped by it.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes integers; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether child `pid` has exited, waiting for it when `block`; it is not
/// reaped (`waitid` with `WNOWAIT`), so its id, and its process group's,
/// stay reserved until `Child::wait`.
pub fn child_exited(pid: u32, block: bool) -> io::Result<bool> {
    let pid = libc::id_t::from(pid);
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: waitid fills the siginfo we pass; zeroed, so `si_pid` stays
        // 0 when nothing has exited (WNOHANG).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::waitid(libc::P_PID, pid, &mut info, flags) } == 0 {
            // SAFETY: waitid succeeded: the pid field is set (or zero).
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn is_running(pid: u32) -> bool {
    // The state follows the command name, which may hold spaces: after ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s.get(i + 2..))
            .is_some_and(|state| !state.starts_with(['Z', 'X']))
    })
}

/// Makes reads and writes on `fd` return `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; no memory is touched.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Maps `len` bytes of the file `fd` from `offset`, shared and read-write.
pub(crate) fn map_shared(fd: RawFd, len: usize, offset: usize) -> io::Result<*mut libc::c_void> {
    // SAFETY: a new mapping of the caller's file; the kernel picks where.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

/// `fd` moved to a descriptor at or above `min`, close-on-exec: out of
/// the way of the low numbers a child is handed.
pub(crate) fn fd_above(fd: OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: duplicating a descriptor we own; the result is checked.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if high < 0 {
        return Err(dup_error());
    }
    // SAFETY: a fresh descriptor, ours alone (`fd` closes as it drops).
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors, ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Asks the kernel to send `sig` to this process when the thread that
/// started it exits (`prctl(PR_SET_PDEATHSIG)`): a process started by an
/// engine then dies with it, even when the engine is killed with SIGKILL.
/// Meant for the child side of a fork (`CommandExt::pre_exec`): it is
/// async-signal-safe. The parent may already be gone by the time this runs:
/// compare `getppid()` with the expected parent afterwards.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Limits this process's address space to `bytes` (`RLIMIT_AS`, soft and
/// hard): an allocation past it fails. Async-signal-safe, for
/// `CommandExt::pre_exec`.
pub fn limit_address_space(bytes: u64) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; nothing else is touched.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The error of a failed `fcntl(F_DUPFD...)`: at the descriptor limit it
/// says `EINVAL` (no descriptor at or above the one asked for is allowed),
/// which is `EMFILE` (too many open files) for whoever asked.
pub fn dup_error() -> io::Error {
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) => io::Error::from_raw_os_error(libc::EMFILE),
        _ => e,
    }
}

/// The resident set size of process `pid`, in bytes (`VmRSS` in
/// `/proc/PID/status`); `None` when the process is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(64), "signal 64");
        for sig in [libc::SIGKILL, libc::SIGTERM, libc::SIGSYS, 64] {
            assert_eq!(signal_number(&signal_name(sig)), Some(sig));
        }
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with code 3"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGKILL)),
            "killed by signal SIGKILL"
        );
        assert_eq!(
            exit_parts(ExitStatus::from_raw(libc::SIGABRT)),
            (None, Some("SIGABRT".into()))
        );
    }

    #[test]
    fn the_resident_size_of_this_process_is_read() {
        let rss = rss_bytes(std::process::id()).expect("this process exists");
        assert!(rss > 0);
        assert_eq!(rss_bytes(u32::MAX), None);
    }

    #[test]
    fn stopping_a_group_kills_its_members_and_escalates_past_an_ignored_term() {
        use std::os::unix::process::CommandExt;
        // A leader that ignores SIGTERM, with a member that would outlive it.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 300 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let member: i32 = line.trim().parse().unwrap();
        let status = stop_group(&mut child, Duration::from_millis(100)).unwrap();
        assert_eq!(exit_parts(status), (None, Some("SIGKILL".into())));
        // The member got the group's signals; once reaped by init it is gone.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{member}/stat")).ok();
            let gone = state.is_none_or(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'));
            if gone {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "member {member} survived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
