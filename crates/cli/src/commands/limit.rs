//! `runyard limit`: sets, clears or lists the limits stored in a shared
//! queue, in force for every worker at its next claim
//! (docs/flow-control.md).

use clap::Args;
use runyard_core::{FlowKey, LimitTarget, Rate};
use runyard_queue::LimitChange;

use super::flow::{flow_of, limit_line};
use crate::exit::{Exit, UsageError};
use crate::flags::{parse_at_least_one_u32, parse_rate, QueueFlag};
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
runyard limit --queue URL --key tenant --concurrency 2        each tenant: 2 at once\n  \
runyard limit --queue URL --key tenant --value 42 --concurrency 8   tenant 42: 8\n  \
runyard limit --queue URL --task call_api --rate 50/s         50 starts a second, all workers\n  \
runyard limit --queue URL --task call_api --clear             back to the jobs' own limits\n  \
runyard limit --queue URL                                     list the stored limits")]
pub(crate) struct LimitArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// Limit the jobs of this task.
    #[arg(long, value_name = "TASK", conflicts_with = "key")]
    pub(crate) task: Option<String>,

    /// Limit the jobs of this key's name, each of its values apart (NAME, or NAME:VALUE for one value).
    #[arg(long, value_name = "NAME")]
    pub(crate) key: Option<String>,

    /// With --key: limit only this value of the key (it beats the key's limit for every value).
    #[arg(long, value_name = "VALUE", requires = "key")]
    pub(crate) value: Option<String>,

    /// The most attempts at once, across every worker.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one_u32)]
    pub(crate) concurrency: Option<u32>,

    /// The most starts per window, across every worker: COUNT/s, COUNT/m or COUNT/h.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) rate: Option<Rate>,

    /// Remove the stored limit (then --concurrency and --rate, if given, set a new one).
    #[arg(long)]
    pub(crate) clear: bool,

    /// Print JSON: the limit as it now is (`null` once cleared), or the list.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `args` limit, if they name anything; checked.
fn target(args: &LimitArgs) -> Result<Option<LimitTarget>, UsageError> {
    if let Some(t) = &args.task {
        if t.trim().is_empty() {
            return Err(UsageError("--task needs a task's name".into()));
        }
        runyard_core::check_task_name(t).map_err(|e| UsageError(format!("--task: {e}")))?;
        return Ok(Some(LimitTarget::Task(t.clone())));
    }
    let Some(k) = &args.key else { return Ok(None) };
    let key: FlowKey = k
        .parse()
        .map_err(|e: runyard_core::FlowError| UsageError(format!("--key {k}: {e}")))?;
    let value = match (key.value(), &args.value) {
        ("", None) => None,
        ("", Some(v)) if v.is_empty() => {
            return Err(UsageError(
                "--value is empty: give a value of the key, or leave --value out to limit \
                 each of its values"
                    .into(),
            ))
        }
        ("", Some(v)) => Some(
            FlowKey::new(key.name(), v)
                .map_err(|e| UsageError(format!("--value {v}: {e}")))?
                .value()
                .to_string(),
        ),
        (v, None) => Some(v.to_string()),
        (_, Some(_)) => {
            return Err(UsageError(format!(
                "--key {k} already names a value: give --key NAME --value VALUE, or --key \
                 NAME:VALUE alone"
            )))
        }
    };
    Ok(Some(LimitTarget::Key {
        name: key.name().to_string(),
        value,
    }))
}

pub(crate) fn main(args: LimitArgs) -> anyhow::Result<Exit> {
    let url = &args.queue.queue;
    url.require_lasting("limit")?;
    let target = target(&args)?;
    let change = args.clear || args.concurrency.is_some() || args.rate.is_some();
    if !change {
        let queue = queues::open(url, Purpose::Inspect)?.queue;
        let flow = flow_of(&*queue, url, "limit")?;
        let all: Vec<_> = flow
            .limits()?
            .into_iter()
            .filter(|l| target.as_ref().is_none_or(|t| *t == l.target))
            .collect();
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&all)?)?;
        } else if all.is_empty() {
            outln!("no stored limits in {}", url.display())?;
        } else {
            outln!("stored limits in {}:", url.display())?;
            for l in &all {
                outln!("  {}", limit_line(l))?;
            }
        }
        return Ok(Exit::Success);
    }
    let Some(target) = target else {
        return Err(UsageError(
            "say what to limit: --task TASK, or --key NAME [--value VALUE] (with no \
             --concurrency, --rate or --clear, `runyard limit` lists the stored limits)"
                .into(),
        )
        .into());
    };
    let queue = queues::open(url, Purpose::Share)?.queue;
    let flow = flow_of(&*queue, url, "limit")?;
    let stored = args.clear && flow.limits()?.iter().any(|l| l.target == target);
    let now = flow.set_limit(&LimitChange {
        target: target.clone(),
        concurrency: args.concurrency,
        rate: args.rate,
        clear: args.clear,
    })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&now)?)?;
        return Ok(Exit::Success);
    }
    match now {
        Some(l) => outln!(
            "{} (stored in {}; in force at every worker's next claim)",
            limit_line(&l),
            url.display()
        )?,
        None if stored => {
            outln!("cleared the stored limit of {target}: its jobs keep the limits they carry")?
        }
        None => outln!("no limit of {target} was stored: nothing to clear")?,
    }
    Ok(Exit::Success)
}
