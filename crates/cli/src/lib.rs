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
//! 130: interrupted; 141 (`exec`): standard output was closed.
//!
//! # Where things are
//!
//! - `cli.rs`: the command line as clap reads it; `flags.rs`: flag groups
//!   several commands share;
//! - `commands/`: one file per command (its arguments and its `main`);
//! - `jobs.rs`: jobs from arguments and job files; `queues.rs`: opening a
//!   queue from its URL; `output/`: what people read, the progress bar,
//!   the report writer;
//! - `exit.rs`: the exit codes, in one place; `interrupt.rs`: the one
//!   interrupt handler; `stdio.rs`: writing without panicking.
#![forbid(unsafe_code)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

// Output: see `stdio.rs`. Errors and exit codes: see `exit.rs`.

/// `println!` that never panics: a line to standard output (see
/// `stdio::write_stdout`); evaluates to `Result<(), RunnerFailure>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdio::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a line to standard error, dropped if
/// standard error is closed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::write_stderr(format_args!($($arg)*))
    };
}

mod cli;
mod commands;
mod exit;
mod flags;
mod interrupt;
mod jobs;
mod logging;
#[cfg(feature = "otlp")]
mod otlp;
mod output;
mod queues;
mod reporting;
mod stdio;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use runyard::Registry;

use crate::cli::{Cli, Command};
use crate::exit::{error_code, error_text, Exit};

/// The tasks of the `runyard` binary: the built-ins, and any linked in with
/// `#[runyard::task]`.
pub fn default_registry() -> anyhow::Result<Registry> {
    Ok(Registry::builder()
        .tasks(runyard_builtins::tasks())
        .linked()
        .build()?)
}

/// Runs the command line with the tasks `registry` builds. In a child
/// process started by `--mode process`, runs the child's role instead.
pub fn main_with(registry: impl Fn() -> anyhow::Result<Registry>) -> ExitCode {
    let registry = || registry().map(Arc::new);
    if runyard::process::is_child() {
        return commands::child::main(registry()).into();
    }
    let cli = Cli::parse();
    let installed = match logging::install(cli.log_format) {
        Ok(installed) => installed,
        Err(e) => {
            let e = anyhow::Error::new(e);
            errln!("error: {}", error_text(&e));
            return error_code(&e);
        }
    };
    let code = match dispatch(cli, &registry) {
        Ok(exit) => exit.into(),
        Err(e) => {
            errln!("error: {}", error_text(&e));
            error_code(&e)
        }
    };
    installed.finish();
    code
}

fn dispatch(
    cli: Cli,
    registry: &dyn Fn() -> anyhow::Result<Arc<Registry>>,
) -> anyhow::Result<Exit> {
    if matches!(
        cli.command,
        Command::Run(_) | Command::Exec(_) | Command::Worker(_)
    ) {
        // Commands that run jobs: the reaper is forked now, while this
        // process is small (its copy of this memory stays small). Should it
        // fail, the first command that needs it says why.
        let _ = runyard::exec::start_reaper();
    }
    let color = cli.color;
    match cli.command {
        Command::Run(args) => commands::run::main(args, color, registry()?),
        Command::Exec(args) => commands::exec::main(args, color),
        Command::List(args) => commands::list::main(args, color, registry()?),
        Command::Describe(args) => commands::describe::main(args, color, registry()?),
        Command::Status(args) => commands::status::main(args, color),
        Command::Bench(args) => commands::bench::main(args, registry()?),
        Command::Submit(args) => commands::submit::main(args, color, registry()?),
        Command::Worker(args) => commands::worker::main(args, color, registry()?),
        Command::Limit(args) => commands::limit::main(args),
        Command::Task(args) => commands::task::main(args),
        Command::Serve(args) => commands::serve::main(args),
        Command::Schedule(args) => commands::schedule::main(args, registry()?),
        Command::Retry(args) => commands::retry::main(args),
        Command::Cancel(args) => commands::cancel::main(args),
        Command::Prune(args) => commands::prune::main(args),
        Command::Migrate(args) => commands::migrate::main(args),
        Command::Child => Ok(commands::child::main(registry())),
        Command::Completions { shell } => commands::completions::main(shell),
    }
}
