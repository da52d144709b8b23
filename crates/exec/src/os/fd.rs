//! File descriptors: pipes, flags (non-blocking, close-on-exec), moving a
//! descriptor out of the low numbers, the bytes waiting in a pipe, and the
//! descriptors a parent hands to a child process.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Makes reads and writes on `fd` return `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    add_flag(fd.as_fd(), libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)
}

/// Closes `fd` when this process executes another program.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    add_flag(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)
}

fn add_flag(fd: BorrowedFd<'_>, get: i32, set: i32, flag: i32) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller borrows; no memory is touched.
    let ok = unsafe {
        let flags = libc::fcntl(fd, get);
        flags >= 0 && libc::fcntl(fd, set, flags | flag) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

/// A pipe, both ends close-on-exec: (read end, write end). (`pipe2` on
/// Linux; elsewhere `pipe`, then the flag, which a concurrent fork and exec
/// in another thread may miss.)
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    #[cfg(target_os = "linux")]
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(target_os = "linux"))]
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    let r = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors, ours alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(target_os = "linux"))]
    {
        set_cloexec(r.as_fd())?;
        set_cloexec(w.as_fd())?;
    }
    Ok((r, w))
}

/// Bytes waiting to be read from a pipe (`FIONREAD`); 0 when unknown.
pub fn bytes_readable(fd: impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer we pass, which
    // outlives the call.
    if unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return 0;
    }
    n.max(0) as usize
}

/// The descriptors claimed with [`take_inherited`].
static CLAIMED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of descriptor `fd`, which this process's parent handed
/// it (a child process's pipes and page, on fixed numbers), marked
/// close-on-exec so that programs it starts inherit none of them. Each
/// number is taken once: a second claim, a descriptor below 3 or one that
/// is not open is refused. Only the child role calls it, first thing in
/// `main`, before anything of its own opens a descriptor.
pub(crate) fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: F_GETFD only reads the flags of a number, open or not.
    if fd < 3 || claimed.contains(&fd) || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} was not handed to this process"),
        ));
    }
    claimed.push(fd);
    // SAFETY: an open descriptor the parent handed to this process alone,
    // claimed once (above), and opened by nothing of ours (see the docs).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(fd.as_fd())?;
    Ok(fd)
}

/// Marks descriptor `fd` close-on-exec if this process has it open; one
/// that was not handed over is left alone.
pub(crate) fn close_inherited_on_exec(fd: RawFd) {
    // SAFETY: fcntl on a number this process may or may not have open: an
    // unopened one fails with EBADF; no memory is touched.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}
