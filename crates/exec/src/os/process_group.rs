//! Process groups: signalling a whole group, and ending one (SIGTERM, then
//! SIGKILL after a grace).

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::signals::{check, pid_t};

/// Sends `sig` to every process of group `pgid`.
pub fn kill_group(pgid: u32, sig: i32) -> io::Result<()> {
    let pgid = pid_t(pgid)?;
    // SAFETY: killpg takes plain integers and has no memory effects.
    check(unsafe { libc::killpg(pgid, sig) })
}

/// Ends `child`, the leader of its own process group (started with
/// `process_group(0)`), and its group: SIGTERM to the group, SIGKILL when
/// the leader has not exited after `grace`, and SIGKILL to what is left of
/// the group once it has (a member that outlived its leader). Waits for the
/// leader and returns how it ended.
pub fn stop_group(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let pgid = child.id();
    let _ = kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::exit_parts;

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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{member}/stat")).ok();
            let gone = state.is_none_or(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'));
            if gone {
                break;
            }
            assert!(Instant::now() < deadline, "member {member} survived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
