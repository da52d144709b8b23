//! `runyard prune`: deletes jobs that finished long ago from a PostgreSQL
//! queue or an SQLite state file.

use std::time::Duration;

use clap::Args;

use crate::exit::Exit;
use crate::exit::UsageError;
use crate::flags::{parse_positive_duration, QueueFlag};
use crate::queues::{self, Purpose, QueueUrl};

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
    let n =
        match &args.queue.queue {
            QueueUrl::Postgres(url) => {
                queues::connect_postgres(url, Purpose::Change)?.prune(args.older_than, args.dead)?
            }
            QueueUrl::Sqlite(path) => {
                queues::open_state(path, Purpose::Change)?.prune(args.older_than, args.dead)?
            }
            QueueUrl::Memory => return Err(UsageError(
                "`runyard prune` needs a queue that outlives the process: --queue postgres://... \
                 or sqlite://PATH"
                    .into(),
            )
            .into()),
        };
    outln!(
        "pruned {n} jobs that finished more than {} ago",
        runyard::duration::format_duration(args.older_than)
    )?;
    Ok(Exit::Success)
}
