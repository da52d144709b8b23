//! What `/proc` says of a process: whether it still runs, its resident
//! size. Linux's; elsewhere a process runs while `kill(pid, 0)` reaches it
//! (a zombie too), and its size is unknown (`max_worker_rss` then never
//! recycles a child process).

/// Whether process `pid` exists and has not exited (a zombie has).
#[cfg(target_os = "linux")]
pub fn is_running(pid: u32) -> bool {
    // The state follows the command name, which may hold spaces: after ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s.get(i + 2..))
            .is_some_and(|state| !state.starts_with(['Z', 'X']))
    })
}

/// Whether process `pid` exists (a zombie counts: there is no `/proc`).
#[cfg(not(target_os = "linux"))]
pub fn is_running(pid: u32) -> bool {
    super::signals::kill(pid, 0).is_ok()
}

/// The resident set size of process `pid`, in bytes (`VmRSS` in
/// `/proc/PID/status`); `None` when the process is gone.
#[cfg(target_os = "linux")]
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

/// Unknown without `/proc`: always `None`.
#[cfg(not(target_os = "linux"))]
pub fn rss_bytes(_pid: u32) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_size_of_this_process_is_read() {
        let rss = rss_bytes(std::process::id()).expect("this process exists");
        assert!(rss > 0);
        assert_eq!(rss_bytes(u32::MAX), None);
        assert!(is_running(std::process::id()));
    }
}
