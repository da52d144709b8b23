//! `runyard exec` end to end: against GNU parallel and xargs on the same
//! inputs (`parallel`), what they cannot do: retries, timeouts, halting
//! (`runs`), and where the commands' output waits (`spool`).

mod parallel;
mod runs;
mod spool;
mod stream;

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::{runyard, Ran};

/// Runs a command with `input` on its standard input.
fn with_input(mut cmd: Command, input: &str) -> Ran {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // A command that refuses its arguments exits without reading its input.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn exec(args: &[&str], input: &str) -> Ran {
    let mut c = runyard();
    c.arg("exec").args(args);
    with_input(c, input)
}

/// GNU parallel: CI installs it (`.ci/run`); elsewhere `apt-get install parallel`.
fn parallel_command() -> Command {
    assert!(
        Command::new("parallel").arg("--version").output().is_ok(),
        "these tests compare with GNU parallel: apt-get install parallel"
    );
    let mut c = Command::new("parallel");
    c.arg("--will-cite");
    c
}

fn parallel(args: &[&str], input: &str) -> Ran {
    let mut c = parallel_command();
    c.args(args);
    with_input(c, input)
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}
