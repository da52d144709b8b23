//! The `runyard` command.

mod args;
mod bench;
mod exec;
mod jobs;
mod output;
mod run;
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

/// The tasks this binary runs: the built-ins, and any linked in with `#[runyard::task]`.
pub(crate) fn registry() -> anyhow::Result<Arc<Registry>> {
    Ok(Arc::new(
        Registry::builder()
            .tasks(runyard_builtins::tasks())
            .linked()
            .build()?,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
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

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
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
        Command::Bench(args) => bench::bench(args, registry()?),
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
