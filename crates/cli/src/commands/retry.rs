//! `runyard retry`: gives dead or cancelled jobs a fresh set of attempts,
//! and the jobs their end had cancelled their `blocked` state back; with
//! `--workflow ID` every job of a workflow that failed on its own.

use clap::Args;
use runyard::queue::{ListFilter, Queue};
use runyard::{JobId, JobState};

use super::ids::{all_exist, jobs, no_such_jobs, some_ids};
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

    /// Every dead or cancelled job of the workflow of job ID that no other
    /// job's end cancelled (those come back blocked with the job that did).
    #[arg(long, value_name = "ID", conflicts_with_all = ["ids", "dead"])]
    pub(crate) workflow: Option<u64>,
}

pub(crate) fn main(args: RetryArgs) -> anyhow::Result<Exit> {
    args.queue.queue.require_lasting("retry")?;
    if args.ids.is_empty() && !args.dead && args.workflow.is_none() {
        return Err(UsageError(
            "give job ids to retry, --dead for every dead job, or --workflow ID for the failed \
             jobs of a workflow"
                .into(),
        )
        .into());
    }
    let queue = queues::open(&args.queue.queue, Purpose::Change)?.queue;
    let mut ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "retried")?;
    if let Some(id) = args.workflow {
        let members = queue.admin()?.workflow(JobId(id))?;
        if members.is_empty() {
            return Err(UsageError(format!(
                "no job with the id {id} in {} (`runyard status` shows its jobs); nothing was retried",
                args.queue.queue.display()
            ))
            .into());
        }
        for m in members {
            if let Some(v) = queue.inspect()?.get(m)? {
                if matches!(v.state, JobState::Dead | JobState::Cancelled)
                    && v.cancelled_by.is_none()
                {
                    ids.push(m);
                }
            }
        }
        if ids.is_empty() {
            outln!(
                "nothing to do: no job of the workflow of job {id} is dead or cancelled on its own"
            )?;
        }
    }
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
        if let Some(cascade) = queue.admin()?.retry(id)? {
            let state = queue.inspect()?.get(id)?.map(|v| v.state);
            let what = match state {
                Some(JobState::Blocked) => "blocked again (waiting for the jobs it is after)",
                _ => "queued again",
            };
            let back = &cascade.reblocked;
            if back.is_empty() {
                outln!("{id}: {what}")?;
            } else {
                outln!(
                    "{id}: {what}; {} after it blocked again: {}",
                    jobs(back.len()),
                    some_ids(back)
                )?;
            }
            continue;
        }
        match queue.inspect()?.get(id)? {
            // Deleted since it was looked up (pruned).
            None => gone.push(id),
            Some(v) if matches!(v.state, JobState::Dead | JobState::Cancelled) => {
                let why = failed_parent(&*queue, &v.after)?
                    .map(|p| format!(": job {p}, which it is after, has not succeeded; retry that one (`runyard retry {p}`)"))
                    .unwrap_or_default();
                outln!("{id}: not retried{why}")?
            }
            Some(v) => outln!(
                "{id}: nothing to do: it is {} (only dead and cancelled jobs are retried)",
                v.state
            )?,
        }
    }
    no_such_jobs(&gone, &args.queue)?;
    Ok(Exit::Success)
}

/// The first of `parents` that ended dead or cancelled.
fn failed_parent(queue: &dyn Queue, parents: &[JobId]) -> anyhow::Result<Option<JobId>> {
    for p in parents {
        if let Some(v) = queue.inspect()?.get(*p)? {
            if matches!(v.state, JobState::Dead | JobState::Cancelled) {
                return Ok(Some(*p));
            }
        }
    }
    Ok(None)
}
