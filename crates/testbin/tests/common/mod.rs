//! What the process tests share: the binary, running it to the end,
//! waiting for conditions, a seeded random generator, and finding what a
//! run left behind.
//!
//! A run started with [`marked_runyard`] gets a mark in its environment,
//! which its workers (and what they start) inherit: after the run, no
//! process with that mark may be left, whoever became its parent.

#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_runyard-testbin");

pub fn runyard() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

pub fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Runs to the end (at most five minutes), reading its output meanwhile.
pub fn finish(mut c: Command) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: our own child, still unreaped (its waiter is blocked).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the run did not end");
        }
    }
}

/// Runs `c` (a command that might not end: a worker) until it exits,
/// killing it after `limit`; its exit code and standard error.
pub fn exit_of(c: &mut Command, limit: Duration) -> (Option<i32>, String) {
    let err = tempfile::tempfile().unwrap();
    let mut child = c
        .stdout(Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    use std::io::{Read, Seek};
    let mut err = err;
    err.rewind().unwrap();
    err.read_to_string(&mut text).unwrap();
    (code, text)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits for `cond`, failing after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A small, seeded generator: the seed is printed, so a failure can be
/// replayed with RUNYARD_TEST_SEED.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("RUNYARD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("RUNYARD_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub const MARK: &str = "RUNYARD_TEST_MARK";

/// The runyard command, marked.
pub fn marked_runyard(args: &[&str]) -> (Command, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mark = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut cmd = Command::new(BIN);
    cmd.args(args).env(MARK, &mark).stdin(Stdio::null());
    (cmd, mark)
}

/// Running processes (not zombies) that carry `mark`.
pub fn marked(mark: &str) -> Vec<u32> {
    let entry = format!("{MARK}={mark}");
    pids()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
                && alive(*p)
        })
        .collect()
}

/// The ids of every process there is.
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
}

/// A process as `/proc/PID/stat` shows it.
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// It has exited, and waits to be reaped.
    pub zombie: bool,
}

/// Process `pid`, if there is one.
pub fn proc_stat(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after ')'.
    let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some(Proc {
        pid,
        ppid: f[1].parse().ok()?,
        pgid: f[2].parse().ok()?,
        zombie: f[0] == "Z",
    })
}

/// Every process there is.
pub fn processes() -> Vec<Proc> {
    pids().filter_map(proc_stat).collect()
}

/// The command line of process `pid` (empty once it is gone).
pub fn argv(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Waits until nothing started by the run marked `mark` is left (and on
/// failure kills what is, so a failed test leaves nothing behind either).
pub fn nothing_left(mark: &str) {
    let start = Instant::now();
    loop {
        let left = marked(mark);
        if left.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(10) {
            for p in &left {
                let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
            }
            panic!("processes of the run left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub struct Ran {
    /// The engine's process id.
    pub pid: u32,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs to the end, then checks that nothing it started is left. Output
/// goes to files, not pipes: a process left behind holding them would make
/// reading a pipe wait forever instead of failing the check.
pub fn run_marked(args: &[&str]) -> Ran {
    let (mut cmd, mark) = marked_runyard(args);
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for_exit(&mut child, Duration::from_secs(300));
    nothing_left(&mark);
    let read = |p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Ran {
        pid: child.id(),
        code: status.code().unwrap_or(-1),
        stdout: read(&out),
        stderr: read(&err),
    }
}

/// Waits for `child` to exit, killing it (and failing) past `limit`.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect()
}

/// Whether process `pid` runs (a zombie has exited: it is waiting to be
/// reaped, not running).
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|p| !p.zombie)
}

pub fn spawn_run(args: &[&str]) -> (Child, String) {
    let (mut cmd, mark) = marked_runyard(args);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, mark)
}
