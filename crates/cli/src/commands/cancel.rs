//! `runyard cancel`: cancels jobs, queued ones at once, running ones by
//! asking their worker.

use clap::Args;
use runyard::queue::CancelResult;
use runyard::JobId;

use super::ids::{all_exist, no_such_jobs};
use crate::exit::Exit;
use crate::flags::QueueFlag;
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the jobs were cancelled (or their workers asked to stop them), or there was nothing to do (a job that had ended); 2 an id names no job (nothing is cancelled then)."
)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The jobs.
    #[arg(value_name = "ID", required = true)]
    pub(crate) ids: Vec<u64>,
}

pub(crate) fn main(args: CancelArgs) -> anyhow::Result<Exit> {
    args.queue.queue.require_lasting("cancel")?;
    let queue = queues::open(&args.queue.queue, Purpose::Change)?.queue;
    let ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "cancelled")?;
    let mut gone = Vec::new();
    for (id, r) in ids.iter().zip(queue.admin()?.cancel(&ids)?.results) {
        let what = match r {
            CancelResult::Cancelled => "cancelled".to_string(),
            CancelResult::Requested => "running; its worker is asked to stop it".to_string(),
            CancelResult::AlreadyFinished(s) => format!("nothing to do: it already {s}"),
            CancelResult::NotFound => {
                gone.push(*id);
                continue;
            }
        };
        outln!("{id}: {what}")?;
    }
    no_such_jobs(&gone, &args.queue)?;
    Ok(Exit::Success)
}
