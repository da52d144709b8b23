//! Signals: their names, sending one to a process, and ignoring one.

use std::io;

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

/// A pid as the kernel takes it.
pub(super) fn pid_t(pid: u32) -> io::Result<libc::pid_t> {
    libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Turns a C call's `0` into `Ok`, anything else into the last OS error.
pub(super) fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = pid_t(pid)?;
    // SAFETY: kill takes plain integers and has no memory effects.
    check(unsafe { libc::kill(pid, sig) })
}

/// Makes this process ignore `sig` from now on (and the programs it
/// executes, which inherit ignored signals).
pub fn ignore_signal(sig: i32) -> io::Result<()> {
    // SAFETY: SIG_IGN installs no handler: no code of ours runs on the signal.
    if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(64), "signal 64");
        for sig in [libc::SIGKILL, libc::SIGTERM, libc::SIGSYS, 64] {
            assert_eq!(signal_number(&signal_name(sig)), Some(sig));
        }
        assert_eq!(signal_number("SIGNOPE"), None);
    }
}
