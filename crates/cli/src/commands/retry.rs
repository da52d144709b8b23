//! `runyard retry`: gives dead or cancelled jobs a fresh set of attempts.

use clap::Args;
use runyard::queue::ListFilter;
use runyard::{JobId, JobState};

use super::ids::{all_exist, no_such_jobs};
use crate::exit::{Exit, UsageError};
use crate::flags::QueueFlag;
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the jobs were queued again, or there was nothing to do (a job neither dead nor cancelled); 2 an id names no job (nothing is retried then)."
)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The jobs.
    #[arg(value_name = "ID")]
    pub(crate) ids: Vec<u64>,

    /// Every dead job.
    #[arg(long)]
    pub(crate) dead: bool,
}

pub(crate) fn main(args: RetryArgs) -> anyhow::Result<Exit> {
    args.queue.queue.require_lasting("retry")?;
    if args.ids.is_empty() && !args.dead {
        return Err(
            UsageError("give job ids to retry, or --dead for every dead job".into()).into(),
        );
    }
    let queue = queues::open(&args.queue.queue, Purpose::Change)?.queue;
    let mut ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "retried")?;
    if args.dead {
        let mut after = None;
        loop {
            let page = queue.inspect()?.list(&ListFilter {
                state: Some(JobState::Dead),
                after,
                limit: 1000,
                ..ListFilter::default()
            })?;
            after = page.last().map(|v| v.id);
            ids.extend(page.iter().map(|v| v.id));
            if page.len() < 1000 {
                break;
            }
        }
        if ids.is_empty() {
            outln!("no dead jobs: nothing to retry")?;
        }
    }
    let mut gone = Vec::new();
    for id in ids {
        if queue.admin()?.retry(id)?.is_some() {
            outln!("{id}: queued again")?;
            continue;
        }
        match queue.inspect()?.get(id)? {
            // Deleted since it was looked up (pruned).
            None => gone.push(id),
            Some(v) => outln!(
                "{id}: nothing to do: it is {} (only dead and cancelled jobs are retried)",
                v.state
            )?,
        }
    }
    no_such_jobs(&gone, &args.queue)?;
    Ok(Exit::Success)
}
