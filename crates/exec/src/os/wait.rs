//! Waiting for a child's exit without reaping it: `waitid(WNOWAIT)`, and on
//! Linux a pidfd to `poll` beside its pipes.

use std::io;
use std::os::fd::OwnedFd;

/// A descriptor that becomes readable when process `pid` exits (a pidfd,
/// Linux 5.3): something to `poll` beside a child's pipes. The process is
/// not reaped by it.
#[cfg(target_os = "linux")]
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    use std::os::fd::{FromRawFd, RawFd};
    let pid = super::signals::pid_t(pid)?;
    // SAFETY: pidfd_open takes integers; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Elsewhere there is no pidfd: always `Unsupported`, and callers look at
/// the child with [`child_exited`] from time to time instead.
#[cfg(not(target_os = "linux"))]
pub fn pidfd_open(_pid: u32) -> io::Result<OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "pidfds are Linux's",
    ))
}

/// Whether child `pid` has exited, waiting for it when `block`; it is not
/// reaped (`waitid` with `WNOWAIT`), so its id, and its process group's,
/// stay reserved until `Child::wait`.
pub fn child_exited(pid: u32, block: bool) -> io::Result<bool> {
    let pid = libc::id_t::from(pid);
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: siginfo_t is plain data, valid zeroed; zeroed, `si_pid`
        // stays 0 when nothing has exited (WNOHANG).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid fills the siginfo we pass, which outlives the call.
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
