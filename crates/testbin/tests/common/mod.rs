//! What the process tests share: the binary, running it to the end,
//! waiting for conditions, a seeded random generator.

#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Output, Stdio};
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
