//! Exit statuses in words: how a process ended, as a report says it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use super::signals::signal_name;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_in_words() {
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
