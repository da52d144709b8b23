//! `runyard list`: the tasks this binary can run.

use std::sync::Arc;

use clap::Args;
use runyard::Registry;

use super::describe::info;
use crate::exit::{Exit, RunnerFailure};
use crate::flags::Color;
use crate::output::human::Human;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn main(args: ListArgs, color: Color, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    list(&registry, args.json, &Human::new(false, color))?;
    Ok(Exit::Success)
}

fn list(reg: &Registry, json: bool, human: &Human) -> Result<(), RunnerFailure> {
    if json {
        let all: Vec<_> = reg.iter().map(|t| info(t)).collect();
        human.line(&serde_json::to_string_pretty(&all).expect("serializable"))?;
        return Ok(());
    }
    let width = reg.iter().map(|t| t.name().len()).max().unwrap_or(4).max(4);
    human.line(&human.bold(&format!("{:<width$}  {:<8}  description", "task", "kind")))?;
    for t in reg.iter() {
        human.line(&format!(
            "{:<width$}  {:<8}  {}",
            t.name(),
            t.kind().as_str(),
            t.description()
        ))?;
    }
    Ok(())
}
