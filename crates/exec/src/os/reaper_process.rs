//! The reaper's own process (see `crate::reaper` for its protocol): forked
//! twice from a runner that has threads, so that it is no child of the
//! runner, it waits for the end of a pipe and then sends SIGKILL to every
//! process group a table names. Between the fork and its exit it makes only
//! async-signal-safe calls (`fork`, `setpgid`, `sigaction`, `prctl`,
//! `chdir`, `close_range`/`close`, `read`, `lseek`, `kill`, `_exit`) on
//! memory it owns (a buffer on its stack).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::rlimit::{soft_limit, Resource};

/// Bytes the reaper reads of the table at once.
const CHUNK: usize = 4096;

/// Forks the reaper: a process of its own group, named `runyard-reaper`,
/// deaf to the signals that end a process by default (SIGKILL still
/// does), that keeps no descriptor but `life` and `table`, blocks reading
/// `life` until its end, then reads `table` as native-endian `i32`s and
/// sends SIGKILL to the group of each positive one, and exits. Returns
/// once the middle process has exited.
pub(crate) fn fork_reaper(life: BorrowedFd<'_>, table: BorrowedFd<'_>) -> io::Result<()> {
    let (life, table) = (life.as_raw_fd(), table.as_raw_fd());
    let fd_limit = soft_limit(Resource::OpenFiles).map_or(1024, |n| n.min(1 << 20)) as RawFd;
    // SAFETY: the child side runs `fork_again`, which makes only
    // async-signal-safe calls and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        fork_again(life, table, fd_limit);
    }
    // The middle process exits as soon as it has forked the reaper.
    let status = loop {
        let mut status = 0;
        // SAFETY: waiting for our own child, into a local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break status;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(io::Error::other("the reaper could not be forked"));
    }
    Ok(())
}

/// The middle process: forks the reaper and exits. Async-signal-safe only.
fn fork_again(life: RawFd, table: RawFd, fd_limit: RawFd) -> ! {
    // SAFETY: fork and _exit are async-signal-safe.
    unsafe {
        match libc::fork() {
            0 => reap(life, table, fd_limit),
            p if p > 0 => libc::_exit(0),
            _ => libc::_exit(1),
        }
    }
}

/// The reaper: waits for the end of the life pipe, then kills every group
/// in the table. Async-signal-safe only, on its own stack buffer.
fn reap(life: RawFd, table: RawFd, fd_limit: RawFd) -> ! {
    // SAFETY: every call below is async-signal-safe and touches only the
    // integers and the local buffer passed to it.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_NAME, c"runyard-reaper".as_ptr());
        libc::setpgid(0, 0);
        // Not pinning the runner's working directory (a mount) meanwhile.
        libc::chdir(c"/".as_ptr());
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGPIPE,
            libc::SIGALRM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::sigaction(sig, &ignore, std::ptr::null_mut());
        }
        close_all_but(life, table, fd_limit);
        let mut buf = [0u8; CHUNK];
        loop {
            let n = libc::read(life, buf.as_mut_ptr().cast(), 1);
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // End of file (or a pipe that cannot be read): the runner and
            // its child processes are gone.
            break;
        }
        libc::lseek(table, 0, libc::SEEK_SET);
        loop {
            let n = libc::read(table, buf.as_mut_ptr().cast(), CHUNK);
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n <= 0 {
                break;
            }
            for w in buf[..n as usize].chunks_exact(4) {
                let pgid = i32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
                if pgid > 0 {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
        libc::_exit(0)
    }
}

/// Closes every descriptor but `a` and `b`. Async-signal-safe.
fn close_all_but(a: RawFd, b: RawFd, fd_limit: RawFd) {
    let (lo, hi) = (a.min(b) as libc::c_uint, a.max(b) as libc::c_uint);
    let ranges = [
        (0, lo.checked_sub(1)),
        (lo + 1, hi.checked_sub(1)),
        (hi + 1, Some(!0)),
    ];
    for (first, last) in ranges {
        let Some(last) = last.filter(|l| first <= *l) else {
            continue;
        };
        #[cfg(target_os = "linux")]
        // SAFETY: close_range takes integers; this process owns nothing but
        // its two descriptors from here on.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
        #[cfg(not(target_os = "linux"))]
        let r = -1;
        if r != 0 {
            // An old kernel: one by one, up to the limit.
            let last = last.min(fd_limit as libc::c_uint);
            for fd in first..=last {
                // SAFETY: closing a descriptor number; no memory is touched.
                unsafe { libc::close(fd as RawFd) };
            }
        }
    }
}
