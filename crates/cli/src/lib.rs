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
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
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
    if runyard::worker::is_worker() {
        return worker_role(registry().map(Arc::new));
    }
    let cli = Cli::parse();
    let registry = || registry().map(Arc::new);
    match dispatch(cli, &registry) {
        Ok(code) => code,
        Err(e) => {
            let usage = e
                .chain()
                .any(|c| c.is::<UsageError>() || c.is::<jobs::InputError>());
            eprintln!("error: {e:#}");
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn worker_role(registry: anyhow::Result<Arc<Registry>>) -> ExitCode {
    match registry {
        Ok(r) => ExitCode::from(runyard::worker::run_worker(&r).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("runyard worker: {e:#}");
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
            eprintln!("{who}: {note}");
        }
        interrupt();
    });
    presses
}

/// How this binary starts its worker processes.
pub(crate) fn process_config(
    flags: &args::ProcessFlags,
    workers: Option<usize>,
) -> Option<runyard::worker::ProcessConfig> {
    let exe = std::env::current_exe().ok()?;
    let mut pc = runyard::worker::ProcessConfig::new(exe, ["__worker"]);
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
        Command::Exec(args) => exec::exec(args, cli.color, registry()?),
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
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "runyard",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
