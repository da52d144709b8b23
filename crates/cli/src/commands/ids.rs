//! Job ids named on the command line (`retry`, `cancel`): each must name
//! a job of the queue; and how output lines count and list jobs.

use runyard::queue::Queue;
use runyard::JobId;

use crate::exit::UsageError;
use crate::flags::QueueFlag;

/// Refuses ids that name no job of the queue, before anything is done to
/// the others.
pub(super) fn all_exist(
    queue: &dyn Queue,
    ids: &[JobId],
    q: &QueueFlag,
    done: &str,
) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for id in ids {
        if queue.inspect()?.get(*id)?.is_none() {
            missing.push(*id);
        }
    }
    no_such_jobs(&missing, q).map_err(|e| e.context(format!("nothing was {done}")))
}

/// An error naming `ids`, unless there are none.
pub(super) fn no_such_jobs(ids: &[JobId], q: &QueueFlag) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    Err(UsageError(format!(
        "no job with the id{} {} in {} (`runyard status` shows its jobs)",
        if ids.len() == 1 { "" } else { "s" },
        list.join(", "),
        q.queue.display()
    ))
    .into())
}

/// Ids for a line of output: the first few, and how many more.
pub(super) fn some_ids(ids: &[JobId]) -> String {
    const SHOWN: usize = 10;
    let mut s: Vec<String> = ids.iter().take(SHOWN).map(|i| i.to_string()).collect();
    if ids.len() > SHOWN {
        s.push(format!("and {} more", ids.len() - SHOWN));
    }
    s.join(", ")
}

/// "1 job", "3 jobs".
pub(super) fn jobs(n: usize) -> String {
    format!("{n} job{}", if n == 1 { "" } else { "s" })
}
