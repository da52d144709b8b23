//! Operating-system helpers for running processes: signal names, exit
//! statuses as outcomes, killing a process group. Linux and other Unixes.

use std::io;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;

/// The name of a signal, e.g. `SIGSEGV` for 11.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_string()
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

/// Ends process group `pgid`: SIGTERM now, SIGKILL after `grace` unless
/// `reaped` is set by then (the group's leader was waited for, so its id
/// may be reused). The wait happens on a thread of its own: this returns at
/// once, so it can be called from a cancellation callback.
pub fn terminate_group(pgid: u32, grace: Duration, reaped: Arc<AtomicBool>) {
    let _ = kill_group(pgid, libc::SIGTERM);
    let escalate = move || {
        std::thread::sleep(grace);
        if !reaped.load(Ordering::SeqCst) {
            let _ = kill_group(pgid, libc::SIGKILL);
        }
    };
    if std::thread::Builder::new()
        .name("runyard-kill".into())
        .spawn(escalate)
        .is_err()
    {
        // Out of threads: do not leave the group running.
        let _ = kill_group(pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(64), "signal 64");
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
}
