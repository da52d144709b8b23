//! `shell`: runs a command, in a process group of its own.
//!
//! One concept, with its tests: the `shell` task (a command's group, its
//! output, its end).
//!
//! The command is a [`CommandGroup`]: the job ends when the command (the
//! group's leader) exits, and what is left of its group then is killed; a
//! timeout or a cancel ends the whole group (SIGTERM, then SIGKILL after
//! `kill_grace`); and the runner's reaper kills the group should the runner
//! die. Output is read until the leader exits, then what is already in the
//! pipes is taken: a background process that holds them open does not hold
//! the job, and what it writes later is dropped.
//!
//! A job that is after other jobs gives its command their outputs (the
//! parents object, JSON): in a file named by `RUNYARD_PARENTS` (see
//! `parents_file`: nothing of it outlives the attempt), and on standard
//! input unless the job gives `stdin` or `stdin_file` of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use runyard::exec::os::{self, Interest, PollFd};
use runyard::exec::{CommandGroup, SpawnError};
use runyard::params::Violation;
use runyard::{Context, Task, TaskError, TaskKind};

use crate::parents_file::{ParentsFile, PARENTS_ENV};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A command: a list of arguments, or a line for `sh -c` (with `shell = true`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cmd {
    /// The program and its arguments, run as given.
    Args(Vec<String>),
    /// A line for `sh -c`.
    Line(String),
}

/// What `cmd` accepts, for the error when it is something else.
const CMD_EXPECTED: &str = "a list of the program and its arguments, e.g. [\"ls\", \"-l\"], \
     or a command line for `sh -c` with shell = true, e.g. \"ls -l | wc -l\"";

impl<'de> Deserialize<'de> for Cmd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cmd, D::Error> {
        struct CmdVisitor;

        impl<'de> Visitor<'de> for CmdVisitor {
            type Value = Cmd;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(CMD_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Cmd, E> {
                Ok(Cmd::Line(s.to_string()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cmd, A::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(Arg(a)) = seq.next_element()? {
                    args.push(a);
                }
                Ok(Cmd::Args(args))
            }
        }

        d.deserialize_any(CmdVisitor)
    }
}

/// One argument of a `cmd` list.
struct Arg(String);

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arg, D::Error> {
        struct ArgVisitor;

        impl Visitor<'_> for ArgVisitor {
            type Value = Arg;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (each argument of `cmd` is one, e.g. [\"sleep\", \"5\"])")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Arg, E> {
                Ok(Arg(s.to_string()))
            }
        }

        d.deserialize_str(ArgVisitor)
    }
}

/// Parameters of `shell`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
#[param(check = check)]
pub struct ShellParams {
    /// The command: a list of arguments (run as given), or a string run with `sh -c` when `shell = true`. It runs in a process group of its own, killed when it exits (a process that leaves the group, e.g. with setsid, is out of reach).
    #[param(type = "string or list of strings")]
    pub cmd: Cmd,
    /// Run `cmd` (a string) through `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Environment variables added to the inherited ones (which leave out
    /// runyard's secrets, PGPASSWORD and RUNYARD_SERVE_TOKEN, unless set here).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Text given as standard input (by default: the parents' outputs for a job after other jobs, else /dev/null).
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
    /// After a timeout or a cancel: the time between SIGTERM and SIGKILL to the process group (in process mode, the worker processes' grace applies).
    #[serde(default = "default_grace", with = "runyard::duration::serde_duration")]
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
/// exit status in `ok_codes`. The job ends when the command exits, and
/// what is left of its group then is killed (what it writes later is
/// dropped); on a timeout or a cancel the whole group gets SIGTERM, then
/// SIGKILL after `kill_grace`; should the runner die, even of SIGKILL, its
/// reaper kills the group. A process that leaves the group on purpose
/// (`setsid`) is out of runyard's reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shell;

impl Task for Shell {
    const NAME: &'static str = "shell";
    const KIND: TaskKind = TaskKind::Blocking;
    const DESCRIPTION: &'static str =
        "Runs a command (argv, or `sh -c` with shell = true) in a process group that ends with it, at a timeout, and with the runner; captures its output";
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
        cmd.envs(&p.env);
        hide_secrets(&mut cmd, &p.env);
        if let Some(d) = &p.cwd {
            cmd.current_dir(d);
        }
        // Held until the command has returned (see `parents_file`).
        let parents = match ctx.parents_shared() {
            Some(json) => Some(ParentsFile::new(json).map_err(|e| {
                TaskError::retryable(format!(
                    "cannot write the parents' outputs to a temporary file: {e}"
                ))
            })?),
            None => None,
        };
        if let Some(f) = &parents {
            cmd.env(PARENTS_ENV, f.path());
        }
        cmd.stdin(match (&p.stdin, &p.stdin_file, &parents) {
            (Some(_), _, _) => Stdio::piped(),
            (None, Some(f), _) => Stdio::from(File::open(f).map_err(|e| {
                TaskError::permanent(format!("cannot open stdin_file {}: {e}", f.display()))
            })?),
            (None, None, Some(f)) => Stdio::from(f.reader().map_err(|e| {
                TaskError::retryable(format!("cannot reopen the parents' outputs file: {e}"))
            })?),
            (None, None, None) => Stdio::null(),
        });
        cmd.stdout(output_to(&p.stdout_file, "stdout_file")?);
        cmd.stderr(output_to(&p.stderr_file, "stderr_file")?);
        let mut group = CommandGroup::spawn(&mut cmd).map_err(|e| spawn_error(&p, e))?;
        let guard = {
            let (stopper, grace) = (group.stopper(), p.kill_grace);
            ctx.cancel_token().on_cancel(move || stopper.stop(grace))
        };
        let input = p.stdin.map(String::into_bytes);
        let mut pipes = Pipes::new(&mut group, input, p.capture)?;
        if let Err(e) = pipes.until_exit(&group) {
            // Dropping the group kills it.
            drop(group);
            return Err(e.into());
        }
        let status = group.finish()?;
        drop(guard);
        drop(parents);
        let (out, err) = pipes.rest()?;
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

/// A command that cannot start (not found, not executable, a working
/// directory that cannot be entered) will not start on a retry either:
/// permanent, with the OS error and what it is about.
fn spawn_error(p: &ShellParams, e: SpawnError) -> TaskError {
    let e = match e {
        SpawnError::Start(e) => e,
        other => return TaskError::retryable(other.to_string()),
    };
    let permanent = matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
    );
    // The OS gives one error for a missing program and a missing directory.
    let msg = match p.cwd.as_deref().and_then(unusable_dir) {
        Some((dir, why)) => format!(
            "cannot enter the working directory `{}` (cwd): {why}",
            dir.display()
        ),
        None => {
            let program = match &p.cmd {
                Cmd::Args(a) => a[0].as_str(),
                Cmd::Line(_) => "sh",
            };
            format!("cannot run `{program}`: {e}")
        }
    };
    if permanent {
        TaskError::permanent(msg)
    } else {
        TaskError::retryable(msg)
    }
}

/// Why `dir` cannot be a command's working directory, if it cannot.
fn unusable_dir(dir: &Path) -> Option<(&Path, String)> {
    let why = match std::fs::metadata(dir) {
        Err(e) => e.to_string(),
        Ok(m) if !m.is_dir() => "not a directory".to_string(),
        Ok(_) => {
            let Err(e) = os::may_execute(dir) else {
                return None;
            };
            e.to_string()
        }
    };
    Some((dir, why))
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

/// A pipe to read from and to wait on.
trait Pipe: Read + AsFd {}
impl<R: Read + AsFd> Pipe for R {}

/// One pipe being read.
struct Stream {
    reader: Option<Box<dyn Pipe>>,
    captured: Captured,
}

impl Stream {
    fn of<R: Read + AsFd + 'static>(pipe: Option<R>) -> io::Result<Stream> {
        Ok(match pipe {
            Some(p) => {
                os::set_nonblocking(&p)?;
                Stream {
                    reader: Some(Box::new(p)),
                    captured: Captured {
                        kept: Some(Vec::new()),
                        total: 0,
                    },
                }
            }
            None => Stream {
                reader: None,
                captured: Captured::default(),
            },
        })
    }

    /// Reads at most `most` bytes of what is there; closes the stream at
    /// its end. Returns how many bytes were read.
    fn read(&mut self, buf: &mut [u8], most: usize, keep: u64) -> io::Result<usize> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(0);
        };
        let most = most.min(buf.len());
        match reader.read(&mut buf[..most]) {
            Ok(0) => {
                self.reader = None;
                Ok(0)
            }
            Ok(n) => {
                self.captured.total += n as u64;
                if let Some(k) = &mut self.captured.kept {
                    let room = keep.saturating_sub(k.len() as u64) as usize;
                    k.extend_from_slice(&buf[..n.min(room)]);
                }
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// Text for the command's standard input, written as it takes it.
struct Feed {
    pipe: std::process::ChildStdin,
    bytes: Vec<u8>,
    at: usize,
}

/// The command's pipes: both output streams read at once (so neither can
/// fill up and stall the command), and its input written as it reads it.
struct Pipes {
    streams: [Stream; 2],
    feed: Option<Feed>,
    keep: u64,
    buf: Box<[u8; 16 * 1024]>,
}

impl Pipes {
    fn new(group: &mut CommandGroup, input: Option<Vec<u8>>, keep: u64) -> io::Result<Pipes> {
        let feed = match (group.take_stdin(), input) {
            (Some(pipe), Some(bytes)) => {
                os::set_nonblocking(&pipe)?;
                Some(Feed { pipe, bytes, at: 0 })
            }
            _ => None,
        };
        Ok(Pipes {
            streams: [
                Stream::of(group.take_stdout())?,
                Stream::of(group.take_stderr())?,
            ],
            feed,
            keep,
            buf: Box::new([0; 16 * 1024]),
        })
    }

    /// Reads and writes until the command's leader exits.
    fn until_exit(&mut self, group: &CommandGroup) -> io::Result<()> {
        let exit_fd = group.exit_fd();
        loop {
            let ready = {
                let mut fds = [PollFd::none(); 4];
                for (pfd, s) in fds.iter_mut().zip(&self.streams) {
                    if let Some(r) = &s.reader {
                        *pfd = PollFd::new(r.as_fd(), Interest::Read);
                    }
                }
                if let Some(f) = &self.feed {
                    fds[2] = PollFd::new(f.pipe.as_fd(), Interest::Write);
                }
                if let Some(fd) = exit_fd {
                    fds[3] = PollFd::new(fd, Interest::Read);
                }
                // Without a pidfd, the leader is looked at every 20 ms.
                let timeout = exit_fd.is_none().then_some(Duration::from_millis(20));
                os::poll(&mut fds, timeout)?;
                fds.map(|f| f.ready())
            };
            for (i, s) in self.streams.iter_mut().enumerate() {
                if ready[i] {
                    s.read(&mut self.buf[..], usize::MAX, self.keep)?;
                }
            }
            if ready[2] {
                self.write_input();
            }
            let exited = match exit_fd {
                Some(_) => ready[3],
                None => group.has_exited()?,
            };
            if exited {
                // Closed: a process of the group left reading it sees its end.
                self.feed = None;
                return Ok(());
            }
        }
    }

    /// Writes what the command's input pipe takes now; closes it once all
    /// is written (or once the command no longer reads it: not an error).
    fn write_input(&mut self) {
        let Some(f) = &mut self.feed else {
            return;
        };
        match f.pipe.write(&f.bytes[f.at..]) {
            Ok(n) => {
                f.at += n;
                if f.at == f.bytes.len() {
                    self.feed = None;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => self.feed = None,
        }
    }

    /// Takes what is in the pipes now (the group is gone): whatever writes
    /// to them later is not waited for.
    fn rest(mut self) -> io::Result<(Captured, Captured)> {
        for s in self.streams.iter_mut() {
            let Some(r) = &s.reader else { continue };
            let mut left = os::bytes_readable(r.as_fd());
            while left > 0 {
                match s.read(&mut self.buf[..], left, self.keep)? {
                    0 => break,
                    n => left -= n,
                }
            }
        }
        let [o, e] = self.streams;
        Ok((o.captured, e.captured))
    }
}

/// The environment variables that hold runyard's own secrets (the
/// PostgreSQL queue's password, the dashboard's token): a command run by a
/// `shell` job does not inherit them.
pub const SECRET_ENV: &[&str] = &["PGPASSWORD", "RUNYARD_SERVE_TOKEN"];

/// Leaves [`SECRET_ENV`] out of `cmd`'s environment, but for those the
/// job's own `env` sets.
fn hide_secrets(cmd: &mut Command, env: &BTreeMap<String, String>) {
    for name in SECRET_ENV {
        if !env.contains_key(*name) {
            cmd.env_remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use runyard::Params;

    use super::*;

    #[test]
    fn cmd_is_described_in_a_job_writers_words() {
        let schema = ShellParams::schema();
        let cmd = schema.fields.iter().find(|f| f.name == "cmd").unwrap();
        assert_eq!(cmd.type_name(), "string or list of strings");
        assert_eq!(cmd.ty, "Cmd");
    }

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
    fn what_cmd_accepts_is_said_with_an_example() {
        let e = params(serde_json::json!({"cmd": true})).unwrap_err();
        assert_eq!(
            e,
            "`cmd`: invalid type: boolean `true`, expected a list of the program and its arguments, \
             e.g. [\"ls\", \"-l\"], or a command line for `sh -c` with shell = true, e.g. \"ls -l | wc -l\""
        );
        let e = params(serde_json::json!({"cmd": ["sleep", 5]})).unwrap_err();
        assert!(
            e.starts_with("`cmd[1]`: invalid type: integer `5`, expected a string"),
            "{e}"
        );
        assert!(e.contains(r#"["sleep", "5"]"#), "{e}");
    }

    #[test]
    fn runyards_secrets_are_not_passed_to_commands() {
        let mut cmd = Command::new("env");
        let mut env = BTreeMap::new();
        hide_secrets(&mut cmd, &env);
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_owned())
            .collect();
        assert_eq!(removed, ["PGPASSWORD", "RUNYARD_SERVE_TOKEN"]);
        // A job that sets one on purpose keeps it.
        env.insert("PGPASSWORD".to_string(), "given".to_string());
        let mut cmd = Command::new("env");
        cmd.envs(&env);
        hide_secrets(&mut cmd, &env);
        let set: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect();
        assert_eq!(
            set,
            [
                ("PGPASSWORD".into(), Some("given".into())),
                ("RUNYARD_SERVE_TOKEN".into(), None)
            ]
        );
    }

    #[test]
    fn the_job_ends_when_its_command_exits_and_later_output_is_dropped() {
        // The background process holds standard output open, and writes to
        // it after the command has exited.
        let p = params(serde_json::json!({
            "cmd": "echo early; (sleep 2; echo late) & sleep 31490 & echo $!", "shell": true
        }))
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(Shell.run(p, &ctx())));
        let out = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the job ended with its command")
            .unwrap();
        let stdout = out.stdout.unwrap();
        let (early, pid) = stdout.split_once('\n').unwrap();
        assert_eq!(early, "early");
        // Its process group was killed: the background `sleep` is gone.
        let pid: u32 = pid.trim().parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while os::is_running(pid) {
            assert!(std::time::Instant::now() < deadline, "sleep {pid} runs on");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!stdout.contains("late"), "{stdout}");
    }

    #[test]
    fn a_working_directory_that_cannot_be_entered_is_named() {
        let p = params(serde_json::json!({"cmd": ["true"], "cwd": "/no/such/dir"})).unwrap();
        let e = Shell.run(p, &ctx()).unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(
            e.message(),
            "cannot enter the working directory `/no/such/dir` (cwd): No such file or directory (os error 2)"
        );
        let p = params(serde_json::json!({"cmd": ["true"], "cwd": "/etc/hostname"})).unwrap();
        assert!(Shell
            .run(p, &ctx())
            .unwrap_err()
            .message()
            .ends_with("(cwd): not a directory"));
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
        // (a callback registered after the cancel runs at once): the shell
        // dies of it, and the task returns.
        token.cancel();
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the whole group was killed");
        assert!(r.is_err());
    }
}
