//! How a process ends with another: the parent-death signal, the parent's
//! id, and work at exit.

use std::io;

/// Asks the kernel to send `sig` to this process when the thread that
/// started it exits (`prctl(PR_SET_PDEATHSIG)`): a process started by an
/// engine then dies with it, even when the engine is killed with SIGKILL.
/// Meant for the child side of a fork: it is async-signal-safe. The parent
/// may already be gone by the time this runs: compare [`parent_pid`] with
/// the expected parent afterwards.
#[cfg(target_os = "linux")]
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments; no memory is passed.
    super::signals::check(unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0)
    })
}

/// Elsewhere there is no parent-death signal: this does nothing, and a
/// child process still ends with its engine when its input pipe does (at
/// its next read), though not in the middle of an attempt.
#[cfg(not(target_os = "linux"))]
pub fn set_parent_death_signal(_sig: i32) -> io::Result<()> {
    Ok(())
}

/// This process's parent's id.
pub fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    let pid = unsafe { libc::getppid() };
    pid as u32
}

/// Runs `f` when this process exits by returning from `main` or calling
/// `exit` (not on a signal, nor on `_exit`).
pub fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: registering a plain extern "C" fn, which lives for ever.
    if unsafe { libc::atexit(f) } == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit: no room for another function"))
    }
}
