//! `runyard task pause|resume`: stops a task (or every task) from
//! starting on any worker of a shared queue, and lets it start again.
//! Attempts running go on to their end; claimed jobs that had not started
//! go back to queued; nothing is lost.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use runyard::queue::TaskName;
use runyard::JobId;

use super::flow::flow_of;
use crate::exit::{Exit, UsageError};
use crate::flags::QueueFlag;
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
pub(crate) struct TaskArgs {
    #[command(subcommand)]
    pub(crate) command: TaskCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Pause a task on a shared queue: when this returns, no attempt of it starts on any worker (running ones finish).
    Pause(Which),
    /// Resume a paused task (with --all, every task and the pause of all).
    Resume(Which),
}

/// Which task, on which queue.
#[derive(Debug, Args)]
pub(crate) struct Which {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The task.
    #[arg(
        value_name = "TASK",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) task: Option<String>,

    /// Every task.
    #[arg(long)]
    pub(crate) all: bool,
}

/// The lease a worker holds when none is live to tell its own.
const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// How often `pause` looks again at the claims it waits for.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn main(args: TaskArgs) -> anyhow::Result<Exit> {
    let (pause, which) = match &args.command {
        TaskCommand::Pause(w) => (true, w),
        TaskCommand::Resume(w) => (false, w),
    };
    let verb = if pause { "task pause" } else { "task resume" };
    let url = &which.queue.queue;
    url.require_lasting(verb)?;
    let task = match which.task.as_deref().map(str::trim) {
        Some("") => {
            return Err(UsageError("the task's name is empty (or give --all)".into()).into())
        }
        Some(t) => {
            runyard_core::check_task_name(t).map_err(UsageError)?;
            Some(TaskName::from(t.to_string()))
        }
        None => None,
    };
    let what = match &task {
        Some(t) => format!("task `{t}`"),
        None => "every task".to_string(),
    };
    let queue = queues::open(url, Purpose::Share)?.queue;
    let flow = flow_of(&*queue, url, verb)?;
    if !pause {
        if flow.resume(task.as_ref())? {
            outln!("resumed {what}: its jobs start again")?;
        } else {
            outln!("nothing to do: {what} was not paused")?;
        }
        return Ok(Exit::Success);
    }
    let claimed = flow.pause(task.as_ref())?;
    outln!("paused {what}: no worker claims its jobs from now on")?;
    if claimed.is_empty() {
        outln!("no claimed job of it waited to start; running attempts go on to their end")?;
        return Ok(Exit::Success);
    }
    let lease = queue
        .inspect()
        .ok()
        .and_then(|i| i.live_workers().ok())
        .and_then(|w| w.iter().map(|w| w.worker.lease).max())
        .unwrap_or(DEFAULT_LEASE);
    wait_given_back(flow, &claimed, lease)?;
    Ok(Exit::Success)
}

/// Waits (looking every [`POLL`], for at most `lease`: the longest lease
/// of the live workers) until none of `claimed` is claimed and not
/// started; returns those that still are.
fn wait_given_back(
    flow: &dyn runyard_queue::FlowControl,
    claimed: &[JobId],
    lease: Duration,
) -> anyhow::Result<Vec<JobId>> {
    errln!(
        "waiting for {} claimed job{} not yet started to go back to queued (at most {}): {}",
        claimed.len(),
        if claimed.len() == 1 { "" } else { "s" },
        runyard::duration::format_duration(lease),
        some(claimed)
    );
    let start = Instant::now();
    loop {
        let left: Vec<JobId> = flow
            .unstarted()?
            .into_iter()
            .filter(|j| claimed.contains(j))
            .collect();
        if left.is_empty() {
            outln!(
                "the {} claimed job{} went back to queued; running attempts go on to their end",
                claimed.len(),
                if claimed.len() == 1 { "" } else { "s" }
            )?;
            return Ok(left);
        }
        if start.elapsed() >= lease {
            outln!(
                "{} claimed job{} not given back within the lease ({}): {}; their workers \
                 stop them before their leases expire, and they go back to queued when rescued",
                left.len(),
                if left.len() == 1 { " was" } else { "s were" },
                runyard::duration::format_duration(lease),
                some(&left)
            )?;
            return Ok(left);
        }
        std::thread::sleep(POLL);
    }
}

/// A few ids, then how many more.
fn some(ids: &[JobId]) -> String {
    let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
    match ids.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runyard::queue::{MemoryQueue, NewJob, Queue};

    /// A memory queue with one `noop` job claimed, not started, then paused.
    fn paused_claim() -> (MemoryQueue, runyard::queue::Lease) {
        let q = MemoryQueue::new();
        let engine = runyard::Engine::new(
            crate::default_registry().unwrap(),
            runyard::EngineConfig::default(),
        );
        let job: NewJob = engine.prepare(&runyard::JobSpec::new("noop")).unwrap();
        q.enqueue(vec![job]).unwrap();
        let c = q.claim("w", 1, Duration::from_secs(60)).unwrap();
        let lease = c[0].lease();
        let given = q
            .flow()
            .unwrap()
            .pause(Some(&TaskName::from("noop")))
            .unwrap();
        assert_eq!(given, vec![lease.job]);
        (q, lease)
    }

    #[test]
    fn pause_returns_once_the_claims_are_given_back() {
        let (q, lease) = paused_claim();
        let flow = q.flow().unwrap();
        q.release("w", &[lease]).unwrap();
        let left = wait_given_back(flow, &[lease.job], Duration::from_secs(60)).unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert!(flow.unstarted().unwrap().is_empty());
    }

    #[test]
    fn pause_says_which_claims_were_not_given_back_within_the_lease() {
        let (q, lease) = paused_claim();
        let flow = q.flow().unwrap();
        let left = wait_given_back(flow, &[lease.job], Duration::from_millis(250)).unwrap();
        assert_eq!(left, vec![lease.job]);
    }
}
