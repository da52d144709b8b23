//! `runyard prune`: deletes jobs that finished long ago from a PostgreSQL
//! queue.

use std::time::Duration;

use clap::Args;

use crate::exit::Exit;
use crate::flags::{parse_positive_duration, QueueFlag};
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// Delete jobs that finished longer ago than this, e.g. 7d, 12h.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) older_than: Duration,

    /// Delete dead jobs too (kept by default, for inspection and retry).
    #[arg(long)]
    pub(crate) dead: bool,
}

pub(crate) fn main(args: PruneArgs) -> anyhow::Result<Exit> {
    let url = args.queue.queue.require_postgres("prune")?;
    let q = queues::connect_postgres(url, Purpose::Change)?;
    let n = q.prune(args.older_than, args.dead)?;
    outln!(
        "pruned {n} jobs that finished more than {} ago",
        runyard::duration::format_duration(args.older_than)
    )?;
    Ok(Exit::Success)
}
