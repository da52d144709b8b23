//! `runyard migrate`: creates or upgrades a PostgreSQL queue's schema.

use clap::Args;

use crate::exit::{Exit, UsageError};
use crate::flags::QueueFlag;

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,
}

pub(crate) fn main(args: MigrateArgs) -> anyhow::Result<Exit> {
    let url = args.queue.queue.require_postgres("migrate")?;
    let opts =
        runyard::postgres::PgOptions::from_url(url).map_err(|e| UsageError(e.to_string()))?;
    let applied = runyard::postgres::PgQueue::migrate(&opts).map_err(|e| {
        if e.kind() == runyard::queue::QueueErrorKind::Incompatible {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e)
        }
    })?;
    if applied.is_empty() {
        outln!(
            "{} (schema `{}`) is at version {}: nothing to do",
            opts.url(),
            opts.schema_name(),
            runyard::postgres::SCHEMA_VERSION
        )?;
    } else {
        for v in applied {
            outln!(
                "applied migration {v} to {} (schema `{}`)",
                opts.url(),
                opts.schema_name()
            )?;
        }
    }
    Ok(Exit::Success)
}
