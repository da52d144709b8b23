//! `shell`: runs a command, in a process group of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runyard::exec::os;
use runyard::{Context, Task, TaskError, TaskKind, Violation};
use serde::{Deserialize, Serialize};

/// A command: a list of arguments, or a line for `sh -c` (with `shell = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cmd {
    /// The program and its arguments, run as given.
    Args(Vec<String>),
    /// A line for `sh -c`.
    Line(String),
}

/// Parameters of `shell`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
#[param(check = check)]
pub struct ShellParams {
    /// The command: a list of arguments (run as given), or a string run with `sh -c` when `shell = true`.
    pub cmd: Cmd,
    /// Run `cmd` (a string) through `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Environment variables added to the inherited ones.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Text given as standard input (none by default: /dev/null).
    #[serde(default)]
    pub stdin: Option<String>,
    /// A file given as standard input.
    #[serde(default)]
    pub stdin_file: Option<PathBuf>,
    /// Write standard output to this file instead of capturing it.
    #[serde(default)]
    pub stdout_file: Option<PathBuf>,
    /// Write standard error to this file instead of capturing it.
    #[serde(default)]
    pub stderr_file: Option<PathBuf>,
    /// Exit statuses that count as success.
    #[serde(default = "zero")]
    #[param(min_len = 1)]
    pub ok_codes: Vec<i32>,
    /// Bytes of each captured stream kept in the output; the rest is counted, not kept.
    #[serde(default = "default_capture")]
    #[param(max = 1_073_741_824)]
    pub capture: u64,
    /// After a timeout or a cancel: the time between SIGTERM and SIGKILL to the process group.
    #[serde(default = "default_grace", with = "runyard::serde_duration")]
    pub kill_grace: Duration,
}

fn zero() -> Vec<i32> {
    vec![0]
}

fn default_capture() -> u64 {
    1 << 20
}

fn default_grace() -> Duration {
    Duration::from_secs(2)
}

fn check(p: &ShellParams) -> Result<(), Violation> {
    match (&p.cmd, p.shell) {
        (Cmd::Args(a), false) if a.is_empty() || a[0].is_empty() => Err(Violation::new(
            "cmd",
            "a non-empty list (the program, then its arguments)",
            &p.cmd,
        )),
        (Cmd::Args(_), true) => Err(Violation::new("cmd", "a string when shell = true", &p.cmd)),
        (Cmd::Line(_), false) => Err(Violation::new(
            "cmd",
            "a list of arguments, or a string with shell = true",
            &p.cmd,
        )),
        (Cmd::Line(l), true) if l.trim().is_empty() => {
            Err(Violation::new("cmd", "a non-empty command line", &p.cmd))
        }
        _ if p.stdin.is_some() && p.stdin_file.is_some() => Err(Violation::new(
            "stdin_file",
            "absent when `stdin` is given (one source of input)",
            &p.stdin_file,
        )),
        _ => Ok(()),
    }
}

/// What `shell` returns on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellOutput {
    /// The exit status.
    pub exit_code: i32,
    /// Captured standard output (lossy UTF-8), unless written to a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Captured standard error (lossy UTF-8), unless written to a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Bytes the command wrote to standard output (kept or not).
    pub stdout_bytes: u64,
    /// Bytes the command wrote to standard error (kept or not).
    pub stderr_bytes: u64,
}

/// `shell`: runs a command in a process group of its own. Success is an
/// exit status in `ok_codes`; on a timeout or a cancel the whole group gets
/// SIGTERM, then SIGKILL after `kill_grace`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shell;

impl Task for Shell {
    const NAME: &'static str = "shell";
    const KIND: TaskKind = TaskKind::Blocking;
    const DESCRIPTION: &'static str =
        "Runs a command (argv, or `sh -c` with shell = true); captures its output; a timeout kills its process group";
    type Params = ShellParams;
    type Output = ShellOutput;

    fn run(&self, p: ShellParams, ctx: &Context) -> Result<ShellOutput, TaskError> {
        let mut cmd = match &p.cmd {
            Cmd::Line(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
            Cmd::Args(args) => {
                let mut c = Command::new(&args[0]);
                c.args(&args[1..]);
                c
            }
        };
        cmd.envs(&p.env).process_group(0);
        if let Some(d) = &p.cwd {
            cmd.current_dir(d);
        }
        cmd.stdin(match (&p.stdin, &p.stdin_file) {
            (Some(_), _) => Stdio::piped(),
            (None, Some(f)) => Stdio::from(File::open(f).map_err(|e| {
                TaskError::permanent(format!("cannot open stdin_file {}: {e}", f.display()))
            })?),
            (None, None) => Stdio::null(),
        });
        cmd.stdout(output_to(&p.stdout_file, "stdout_file")?);
        cmd.stderr(output_to(&p.stderr_file, "stderr_file")?);
        let mut child = cmd.spawn().map_err(|e| spawn_error(&p.cmd, e))?;
        let pid = child.id();
        let reaped = Arc::new(AtomicBool::new(false));
        let guard = {
            let (reaped, grace) = (Arc::clone(&reaped), p.kill_grace);
            ctx.cancel_token()
                .on_cancel(move || os::terminate_group(pid, grace, reaped))
        };
        let writer = match (child.stdin.take(), p.stdin) {
            (Some(mut pipe), Some(text)) => Some(std::thread::spawn(move || {
                // A command that exits without reading its input is not an error.
                let _ = pipe.write_all(text.as_bytes());
            })),
            _ => None,
        };
        let (out, err) = drain(child.stdout.take(), child.stderr.take(), p.capture)?;
        let status = child.wait()?;
        reaped.store(true, Ordering::SeqCst);
        drop(guard);
        if let Some(w) = writer {
            let _ = w.join();
        }
        ctx.check()?;
        let (code, signal) = os::exit_parts(status);
        match code {
            Some(c) if p.ok_codes.contains(&c) => Ok(ShellOutput {
                exit_code: c,
                stdout: out.text(),
                stderr: err.text(),
                stdout_bytes: out.total,
                stderr_bytes: err.total,
            }),
            _ => {
                let mut msg = os::describe_exit(status);
                if let Some(last) = err.last_line() {
                    msg.push_str(": ");
                    msg.push_str(&last);
                }
                Err(TaskError::retryable(msg).with_detail(&serde_json::json!({
                    "exit_code": code,
                    "signal": signal,
                    "stderr_tail": err.tail(2048),
                })))
            }
        }
    }
}

fn output_to(file: &Option<PathBuf>, what: &str) -> Result<Stdio, TaskError> {
    Ok(match file {
        Some(f) => Stdio::from(File::create(f).map_err(|e| {
            TaskError::permanent(format!("cannot create {what} {}: {e}", f.display()))
        })?),
        None => Stdio::piped(),
    })
}

/// A command that cannot start (not found, not executable) will not start
/// on a retry either: permanent, with the OS error.
fn spawn_error(cmd: &Cmd, e: io::Error) -> TaskError {
    let program = match cmd {
        Cmd::Args(a) => a[0].clone(),
        Cmd::Line(_) => "sh".to_string(),
    };
    let msg = format!("cannot run `{program}`: {e}");
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput => {
            TaskError::permanent(msg)
        }
        _ => TaskError::retryable(msg),
    }
}

/// A captured stream: the first bytes, and how many there were.
#[derive(Default)]
struct Captured {
    kept: Option<Vec<u8>>,
    total: u64,
}

impl Captured {
    fn text(&self) -> Option<String> {
        self.kept
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }

    fn last_line(&self) -> Option<String> {
        let k = self.kept.as_ref()?;
        let text = String::from_utf8_lossy(k);
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        Some(line.chars().take(200).collect())
    }

    fn tail(&self, n: usize) -> Option<String> {
        let k = self.kept.as_ref()?;
        Some(String::from_utf8_lossy(&k[k.len().saturating_sub(n)..]).into_owned())
    }
}

/// One pipe being read.
struct Stream {
    reader: Option<Box<dyn Read>>,
    captured: Captured,
    fd: i32,
}

impl Stream {
    fn of<R: Read + AsRawFd + 'static>(pipe: Option<R>) -> Stream {
        match pipe {
            Some(p) => Stream {
                fd: p.as_raw_fd(),
                reader: Some(Box::new(p)),
                captured: Captured {
                    kept: Some(Vec::new()),
                    total: 0,
                },
            },
            None => Stream {
                reader: None,
                captured: Captured::default(),
                fd: -1,
            },
        }
    }
}

/// Reads both pipes to their ends at once (so neither can fill up and stall
/// the command), keeping up to `keep` bytes of each.
fn drain(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    keep: u64,
) -> io::Result<(Captured, Captured)> {
    let mut streams = [Stream::of(out), Stream::of(err)];
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .filter(|s| s.reader.is_some())
            .map(|s| libc::pollfd {
                fd: s.fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if fds.is_empty() {
            break;
        }
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for pfd in fds.iter().filter(|p| p.revents != 0) {
            let s = streams.iter_mut().find(|s| s.fd == pfd.fd).expect("polled");
            let reader = s.reader.as_mut().expect("open");
            match reader.read(&mut buf) {
                Ok(0) => s.reader = None,
                Ok(n) => {
                    s.captured.total += n as u64;
                    if let Some(k) = &mut s.captured.kept {
                        let room = keep.saturating_sub(k.len() as u64) as usize;
                        k.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let [o, e] = streams;
    Ok((o.captured, e.captured))
}

#[cfg(test)]
mod tests {
    use runyard::Params;

    use super::*;

    fn params(v: serde_json::Value) -> Result<ShellParams, String> {
        let p = ShellParams::decode(&v.to_string())?;
        p.validate()
            .map_err(|v| format!("`{}` must be {}, got {}", v.field, v.constraint, v.value))?;
        Ok(p)
    }

    fn ctx() -> Context {
        Context::new(runyard::JobId(1), 1, runyard::CancelToken::new())
    }

    #[test]
    fn a_string_needs_shell_true_and_a_list_must_not_be_empty() {
        assert!(params(serde_json::json!({"cmd": "echo hi"}))
            .unwrap_err()
            .contains("with shell = true"));
        assert!(params(serde_json::json!({"cmd": []}))
            .unwrap_err()
            .contains("non-empty list"));
        assert!(params(
            serde_json::json!({"cmd": ["cat"], "stdin": "x", "stdin_file": "/etc/hosts"})
        )
        .unwrap_err()
        .contains("one source of input"));
        assert!(params(serde_json::json!({"cmd": "echo hi", "shell": true})).is_ok());
    }

    #[test]
    fn captures_output_and_status_and_bounds_the_capture() {
        let p = params(serde_json::json!({
            "cmd": "printf 'hello'; printf 'oops' >&2; head -c 100000 /dev/zero", "shell": true, "capture": 5
        }))
        .unwrap();
        let out = Shell.run(p, &ctx()).unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(out.stdout.as_deref(), Some("hello"));
        assert_eq!(out.stdout_bytes, 100_005);
        assert_eq!(out.stderr.as_deref(), Some("oops"));
    }

    #[test]
    fn a_failing_status_is_an_error_with_its_code_and_stderr() {
        let p = params(serde_json::json!({"cmd": "echo bad thing >&2; exit 3", "shell": true}))
            .unwrap();
        let e = Shell.run(p, &ctx()).unwrap_err();
        assert_eq!(e.message(), "exited with code 3: bad thing");
        assert!(!e.is_permanent());
        let d: serde_json::Value = serde_json::from_str(e.detail().unwrap().get()).unwrap();
        assert_eq!(d["exit_code"], 3);
        let ok = params(serde_json::json!({"cmd": "exit 3", "shell": true, "ok_codes": [0, 3]}))
            .unwrap();
        assert_eq!(Shell.run(ok, &ctx()).unwrap().exit_code, 3);
    }

    #[test]
    fn a_missing_program_is_a_permanent_error() {
        let p = params(serde_json::json!({"cmd": ["/no/such/program"]})).unwrap();
        let e = Shell.run(p, &ctx()).unwrap_err();
        assert!(e.is_permanent());
        assert!(
            e.message().starts_with("cannot run `/no/such/program`: "),
            "{}",
            e.message()
        );
    }

    #[test]
    fn stdin_env_and_cwd_reach_the_command() {
        let p = params(serde_json::json!({
            "cmd": "cat; echo \" $GREETING\"; pwd", "shell": true, "stdin": "in", "env": {"GREETING": "hi"}, "cwd": "/tmp"
        }))
        .unwrap();
        assert_eq!(
            Shell.run(p, &ctx()).unwrap().stdout.as_deref(),
            Some("in hi\n/tmp\n")
        );
    }

    #[test]
    fn cancelling_kills_the_whole_process_group() {
        let token = runyard::CancelToken::new();
        let c = Context::new(runyard::JobId(1), 1, token.clone());
        // The shell starts a grandchild that would outlive a kill of the shell alone.
        let p = params(serde_json::json!({"cmd": "sleep 3600 & sleep 3600; wait", "shell": true, "kill_grace": "100ms"}))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(Shell.run(p, &c)));
        // Cancelled before or after the command starts, the group is killed
        // (a callback registered after the cancel runs at once). The task
        // returns only once every process holding its pipes is gone, so a
        // grandchild left alive would keep it waiting past the deadline.
        token.cancel();
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the whole group was killed");
        assert!(r.is_err());
    }
}
