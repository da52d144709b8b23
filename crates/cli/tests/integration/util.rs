//! Running the real `runyard` binary in tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1");
    c
}

/// What a finished run printed and returned.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    pub(crate) fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    pub(crate) fn code(&self, expected: i32) -> &Ran {
        assert_eq!(
            self.code, expected,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `runyard ARGS` (in `dir` when given) to the end.
pub(crate) fn run_in(dir: Option<&Path>, args: &[&str]) -> Ran {
    let mut c = runyard();
    c.args(args).stdin(Stdio::null());
    if let Some(d) = dir {
        c.current_dir(d);
    }
    Ran::from(c.output().expect("runyard starts"))
}

pub(crate) fn run(args: &[&str]) -> Ran {
    run_in(None, args)
}

/// Runs `runyard ARGS` with its address space limited to 1 GiB: a test of
/// a limit on input that, were the limit gone, would take the machine's
/// memory fails at once instead.
pub(crate) fn run_small(args: &[&str]) -> Ran {
    use std::os::unix::process::CommandExt;
    const LIMIT: libc::rlim_t = 1 << 30;
    let mut c = runyard();
    c.args(args).stdin(Stdio::null());
    // SAFETY: only setrlimit(2), which is async-signal-safe, runs in the
    // child before exec.
    unsafe {
        c.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &l) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Ran::from(c.output().expect("runyard starts"))
}

/// A temporary directory with a file written in it.
pub(crate) struct Dir {
    pub(crate) dir: tempfile::TempDir,
}

impl Dir {
    pub(crate) fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

/// Waits until `cond` holds, checking every few milliseconds, for at most `limit`.
pub(crate) fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for a child to exit, for at most `limit` (killing it if it does not).
pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("runyard did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a signal to a child.
pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// The JSON lines of an events file.
pub(crate) fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub(crate) use crate::support::Background;

/// Starts `runyard ARGS` in the background.
pub(crate) fn background(args: &[&str]) -> Background {
    let mut cmd = runyard();
    cmd.args(args);
    Background::start(cmd)
}
