//! The `runyard` command line, as a library: a binary of your own can
//! offer the whole command line (run, exec, list, describe, and the worker
//! processes of `--mode process`) with its own tasks:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     runyard_cli::main_with(|| {
//!         Ok(runyard::Registry::builder()
//!             .tasks(runyard_builtins::tasks())
//!             .linked()
//!             .build()?)
//!     })
//! }
//! ```
//!
//! # Exit codes
//!
//! 0: every job succeeded; 1: a job ended dead or cancelled; 2: usage or
//! input error (nothing ran); 3: the runner itself failed (a queue or
//! database it could not reach or write, an output it could not write);
//! 130: interrupted.
#![forbid(unsafe_code)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

// Output. Nothing here prints with `println!` or `eprintln!`, which panic
// when the stream is closed (`runyard run badtask 2>&1 | true`): lines go
// through `outln!` and `errln!` (the lint above holds it). A closed
// standard error is ignored: there is no one left to tell. A closed
// standard output drops the output and the command goes on (a reader that
// stops early, `| head`, is not an error, as in ripgrep); any other failure
// to write it is the runner's (`RunnerFailure`, exit 3).
//
// Errors. One that reaches `main_with` is printed once on standard error,
// its causes joined by `: `, each written once (some libraries show their
// source in their own message and return it as their source too). Its
// chain chooses the exit code: 2 if the input was at fault (`UsageError`,
// a job's `InputError`, a queue that refused the request as invalid), else
// 3. Exit codes 0, 1 and 130 are results, never errors.

/// `println!` that never panics: a line to standard output (see
/// `write_stdout`); evaluates to `Result<(), RunnerFailure>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a line to standard error, dropped if
/// standard error is closed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::write_stderr(format_args!($($arg)*))
    };
}

mod args;
mod bench;
mod exec;
mod jobs;
mod output;
mod run;
mod shared;
mod state;
mod status;
mod tasks;

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use runyard::queue::{QueueError, QueueErrorKind};
use runyard::Registry;

use crate::args::{Cli, Command};
use crate::output::Human;

/// Bad input found before anything ran: exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The runner itself failed (a queue it could not reach or write, an output it could not write): exit code 3.
#[derive(Debug)]
pub(crate) struct RunnerFailure(pub(crate) String);

impl fmt::Display for RunnerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunnerFailure {}

/// Writes one line to standard output. A reader that has gone (`| head`)
/// is not an error: the line is dropped. Any other failure (a full disk)
/// is.
pub(crate) fn write_stdout(line: fmt::Arguments<'_>) -> Result<(), RunnerFailure> {
    write_all_stdout(format!("{line}\n").as_bytes())
}

/// Writes `bytes` to standard output, as [`write_stdout`] does.
pub(crate) fn write_all_stdout(bytes: &[u8]) -> Result<(), RunnerFailure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(RunnerFailure(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// Writes one line to standard error, ignoring a failure: standard error is
/// where a failure would be told.
pub(crate) fn write_stderr(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The exit code for an error: 2 when the input was at fault (nothing ran),
/// 3 when the runner was.
fn exit_code(e: &anyhow::Error) -> u8 {
    let input = e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<jobs::InputError>()
            || c.downcast_ref::<QueueError>()
                .is_some_and(|q| q.kind() == QueueErrorKind::InvalidInput)
    });
    if input {
        2
    } else {
        3
    }
}

/// An error and its causes, joined by `: `, each cause written once: a
/// cause whose text ends the one before it (an error that shows its source
/// in its own message and returns it as its source too) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || last.ends_with(&c) {
            last = c;
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
        last = c;
    }
    text
}

/// The tasks of the `runyard` binary: the built-ins, and any linked in with
/// `#[runyard::task]`.
pub fn default_registry() -> anyhow::Result<Registry> {
    Ok(Registry::builder()
        .tasks(runyard_builtins::tasks())
        .linked()
        .build()?)
}

/// Runs the command line with the tasks `registry` builds. In a worker
/// process started by `--mode process`, runs the worker role instead.
pub fn main_with(registry: impl Fn() -> anyhow::Result<Registry>) -> ExitCode {
    if runyard::process::is_child() {
        return worker_role(registry().map(Arc::new));
    }
    let cli = Cli::parse();
    let registry = || registry().map(Arc::new);
    match dispatch(cli, &registry) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", error_text(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

fn worker_role(registry: anyhow::Result<Arc<Registry>>) -> ExitCode {
    match registry {
        Ok(r) => ExitCode::from(runyard::process::run_child(&r).clamp(0, 255) as u8),
        Err(e) => {
            errln!("runyard worker: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// Ctrl-C and SIGTERM for a run: the first drains (saying `first`), the
/// second cancels running attempts, the third exits at once (130). Returns
/// the count of interrupts so far.
pub(crate) fn on_interrupts(
    interrupt: impl Fn() + Send + Sync + 'static,
    who: &'static str,
    first: String,
    quiet: bool,
) -> Arc<std::sync::atomic::AtomicU32> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let presses = Arc::new(AtomicU32::new(0));
    let p = Arc::clone(&presses);
    let _ = ctrlc::set_handler(move || {
        let note = match p.fetch_add(1, Ordering::SeqCst) {
            0 => first.clone(),
            1 => "cancelling running attempts; interrupt again to exit at once".to_string(),
            _ => std::process::exit(130),
        };
        if !quiet {
            errln!("{who}: {note}");
        }
        interrupt();
    });
    presses
}

/// How this binary starts its worker processes.
pub(crate) fn process_config(
    flags: &args::ProcessFlags,
    workers: Option<usize>,
) -> Option<runyard::process::ProcessConfig> {
    let exe = std::env::current_exe().ok()?;
    let mut pc = runyard::process::ProcessConfig::new(exe, ["__child"]);
    if let Some(w) = workers {
        pc.workers = w;
    }
    pc.max_jobs_per_worker = flags.max_jobs_per_worker;
    pc.max_worker_rss = flags.max_worker_rss;
    pc.memory_limit = flags.worker_memory_limit;
    Some(pc)
}

fn dispatch(
    cli: Cli,
    registry: &dyn Fn() -> anyhow::Result<Arc<Registry>>,
) -> anyhow::Result<ExitCode> {
    if matches!(
        cli.command,
        Command::Run(_) | Command::Exec(_) | Command::QueueWorker(_)
    ) {
        // Commands that run jobs: the reaper is forked now, while this
        // process is small (its copy of this memory stays small). Should it
        // fail, the first command that needs it says why.
        let _ = runyard::exec::start_reaper();
    }
    match cli.command {
        Command::Run(args) => run::run(args, cli.color, registry()?),
        Command::Exec(args) => exec::exec(args, cli.color),
        Command::List(args) => {
            tasks::list(&*registry()?, args.json, &Human::new(false, cli.color));
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe(args) => {
            let reg = registry()?;
            let idx = reg
                .lookup(&args.task)
                .map_err(|e| UsageError(e.to_string()))?;
            tasks::describe(reg.task(idx), args.json, &Human::new(false, cli.color));
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => status::status(args, &Human::new(false, cli.color)),
        Command::Bench(args) => bench::bench(args, registry()?),
        Command::Submit(args) => shared::submit(args, cli.color, registry()?),
        Command::QueueWorker(args) => shared::worker(args, cli.color, registry()?),
        Command::Retry(args) => shared::retry(args),
        Command::Cancel(args) => shared::cancel(args),
        Command::Prune(args) => shared::prune(args),
        Command::Migrate(args) => shared::migrate(args),
        Command::Worker => Ok(worker_role(registry())),
        Command::Completions { shell } => {
            // Generated whole first: clap_complete panics on a write error.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "runyard", &mut script);
            write_all_stdout(&script)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
