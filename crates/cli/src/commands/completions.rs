//! `runyard completions SHELL`: a shell completion script.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Exit;
use crate::stdio::write_all_stdout;

pub(crate) fn main(shell: Shell) -> anyhow::Result<Exit> {
    // Generated whole first: clap_complete panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "runyard", &mut script);
    write_all_stdout(&script)?;
    Ok(Exit::Success)
}
