//! `runyard describe`: a task's parameters, their constraints and its
//! default policy.

use std::sync::Arc;

use clap::Args;
use runyard::duration::format_duration;
use runyard::{Registry, TaskDef};
use serde_json::{json, Value};

use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::flags::Color;
use crate::jobs::unknown_task_message;
use crate::output::human::Human;

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The task.
    pub(crate) task: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn main(
    args: DescribeArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<Exit> {
    let idx = registry
        .lookup(&args.task)
        .map_err(|e| UsageError(unknown_task_message(&e)))?;
    describe(registry.task(idx), args.json, &Human::new(false, color))?;
    Ok(Exit::Success)
}

/// A task as `--json` shows it (`list --json` too).
pub(super) fn info(t: &TaskDef) -> serde_json::Value {
    let p = t.policy();
    json!({
        "name": t.name(),
        "kind": t.kind().as_str(),
        "description": t.description(),
        "max_attempts": p.max_attempts,
        "backoff": p.backoff.to_string(),
        "timeout": t.timeout().map(format_duration),
        "isolate": t.isolate(),
        "concurrency": t.worker_concurrency(),
        "params": t.schema(),
    })
}

fn describe(t: &TaskDef, json: bool, human: &Human) -> Result<(), RunnerFailure> {
    if json {
        human.line(&serde_json::to_string_pretty(&info(t)).expect("serializable"))?;
        return Ok(());
    }
    let p = t.policy();
    human.line(&format!(
        "{} ({} task)",
        human.bold(t.name()),
        t.kind().as_str()
    ))?;
    if !t.description().is_empty() {
        human.line(&format!("  {}", t.description()))?;
    }
    human.line("")?;
    human.line(&human.bold("default policy"))?;
    human.line(&format!("  max_attempts  {}", p.max_attempts))?;
    human.line(&format!("  backoff       {}", p.backoff))?;
    human.line(&format!(
        "  timeout       {}",
        t.timeout().map_or("none".to_string(), format_duration)
    ))?;
    if t.isolate() {
        human.line("  isolate       yes (runs in a worker process in auto mode)")?;
    }
    if let Some(c) = t.worker_concurrency() {
        human.line(&format!("  concurrency   at most {c} at once"))?;
    }
    human.line("")?;
    let schema = t.schema();
    human.line(&human.bold("parameters"))?;
    if schema.free_form {
        human.line("  any table of name = value (not checked)")?;
    } else if schema.fields.is_empty() {
        human.line("  none")?;
    }
    let types: Vec<String> = schema.fields.iter().map(|f| f.type_name()).collect();
    let width = types.iter().map(String::len).max().unwrap_or(0).max(16);
    for (f, ty) in schema.fields.iter().zip(types) {
        let mut line = format!("  {:<14} {ty:<width$}", f.name);
        match (&f.default, f.required) {
            (_, true) => line.push_str(" required"),
            (None | Some(Value::Null), false) => line.push_str(" optional"),
            // A duration as it is written: `2s`.
            (Some(Value::String(d)), false) if ty == "duration" => {
                line.push_str(&format!(" default {d}"))
            }
            (Some(d), false) => line.push_str(&format!(" default {d}")),
        }
        if !f.constraints.is_empty() {
            line.push_str(&format!("; must be {}", f.constraints.join(" and ")));
        }
        human.line(&line)?;
        if !f.doc.is_empty() {
            for d in f.doc.lines() {
                human.line(&format!("  {:<14} {}", "", human.dim(d)))?;
            }
        }
    }
    Ok(())
}
