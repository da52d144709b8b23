//! `runyard cancel`: cancels jobs, queued and blocked ones at once (with
//! the jobs after them, transitively), running ones by asking their
//! worker; with `--workflow ID` every unfinished job of a workflow.

use clap::Args;
use runyard::queue::{CancelResult, Queue};
use runyard::JobId;

use super::ids::{all_exist, jobs, no_such_jobs, some_ids};
use crate::exit::{Exit, UsageError};
use crate::flags::QueueFlag;
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the jobs were cancelled (or their workers asked to stop them), or there was nothing to do (a job that had ended); 2 an id names no job (nothing is cancelled then)."
)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The jobs (the jobs after them are cancelled too).
    #[arg(value_name = "ID", required_unless_present = "workflow")]
    pub(crate) ids: Vec<u64>,

    /// Every unfinished job of the workflow of job ID: the jobs linked to
    /// it by `after`, either way.
    #[arg(long, value_name = "ID", conflicts_with = "ids")]
    pub(crate) workflow: Option<u64>,
}

pub(crate) fn main(args: CancelArgs) -> anyhow::Result<Exit> {
    args.queue.queue.require_lasting("cancel")?;
    let queue = queues::open(&args.queue.queue, Purpose::Change)?.queue;
    if let Some(id) = args.workflow {
        return workflow(&*queue, JobId(id), &args.queue);
    }
    let ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "cancelled")?;
    let mut gone = Vec::new();
    // One at a time, so that each line tells the jobs after that one.
    for id in &ids {
        let done = queue.admin()?.cancel(&[*id])?;
        let after = done.cascade.cancelled.len();
        let what = match done.results.first().copied() {
            Some(CancelResult::Cancelled) if after > 0 => {
                format!("cancelled, with {} after it: {}", jobs(after), some_ids(&done.cascade.cancelled))
            }
            Some(CancelResult::Cancelled) => "cancelled".to_string(),
            Some(CancelResult::Requested) => "running; its worker is asked to stop it (the jobs after it are cancelled when it stops)".to_string(),
            Some(CancelResult::AlreadyFinished(s)) => format!("nothing to do: it already {s}"),
            Some(CancelResult::NotFound) | None => {
                gone.push(*id);
                continue;
            }
        };
        outln!("{id}: {what}")?;
    }
    no_such_jobs(&gone, &args.queue)?;
    Ok(Exit::Success)
}

/// Cancels every unfinished job of the workflow of `id`.
fn workflow(queue: &dyn Queue, id: JobId, q: &QueueFlag) -> anyhow::Result<Exit> {
    let members = queue.admin()?.workflow(id)?;
    if members.is_empty() {
        return Err(UsageError(format!(
            "no job with the id {id} in {} (`runyard status` shows its jobs); nothing was cancelled",
            q.queue.display()
        ))
        .into());
    }
    let mut open = Vec::new();
    for m in &members {
        if let Some(v) = queue.inspect()?.get(*m)? {
            if !v.state.is_terminal() {
                open.push(*m);
            }
        }
    }
    if open.is_empty() {
        outln!(
            "nothing to do: the {} of the workflow of job {id} have all ended",
            jobs(members.len())
        )?;
        return Ok(Exit::Success);
    }
    let done = queue.admin()?.cancel(&open)?;
    let mut cancelled: std::collections::BTreeSet<JobId> =
        done.cascade.cancelled.iter().copied().collect();
    let mut running = 0;
    for (m, r) in open.iter().zip(&done.results) {
        match r {
            CancelResult::Cancelled => {
                cancelled.insert(*m);
            }
            CancelResult::Requested => running += 1,
            _ => {}
        }
    }
    let cancelled = cancelled.len();
    let mut line = format!(
        "cancelled {} of the workflow of job {id} ({} in all)",
        jobs(cancelled),
        members.len()
    );
    if running > 0 {
        line.push_str(&format!(
            "; {} running: their workers are asked to stop them",
            running
        ));
    }
    outln!("{line}")?;
    Ok(Exit::Success)
}
