//! `runyard submit`: puts jobs in a shared queue for workers to run, and
//! with `--wait` waits for them to end and reports on them.
//!
//! Plan (the queue URL and every job checked, nothing opened), then submit
//! (the queue opened, the jobs enqueued in batches, their ids printed),
//! then with `--wait` the report.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use runyard::queue::{ListFilter, Queue};
use runyard::report::{JobView, SummaryBuilder};
use runyard::{Engine, EngineConfig, JobId, JobState, Registry};

use crate::exit::{Exit, UsageError};
use crate::flags::{Color, JobFlags, ProcessFlags, QueueFlag};
use crate::jobs::{JobInput, Prepared};
use crate::output::human::{print_summary, Human};
use crate::queues::{self, Purpose};

#[derive(Debug, Args)]
#[command(after_long_help = crate::jobs::SYNTAX_HELP)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    #[command(flatten)]
    pub(crate) input: JobInput,

    #[command(flatten)]
    pub(crate) flags: JobFlags,

    /// Wait until every submitted job has ended, then report on them (exit 1 if any did not succeed).
    #[arg(long)]
    pub(crate) wait: bool,

    /// With --wait: print only errors.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

/// Jobs per enqueue when submitting (each batch is one transaction).
const SUBMIT_BATCH: usize = 10_000;

pub(crate) fn main(
    args: SubmitArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<Exit> {
    let jobs = plan(&args, registry)?;
    let queue = queues::open(&args.queue.queue, Purpose::Share)?.queue;
    let ids = submit(&*queue, jobs)?;
    for id in &ids {
        outln!("{}", id.0)?;
    }
    if !args.wait {
        return Ok(Exit::Success);
    }
    wait_for(&*queue, &ids, color, args.quiet)
}

/// The jobs to submit, every one checked; nothing is opened.
fn plan(args: &SubmitArgs, registry: Arc<Registry>) -> anyhow::Result<Vec<Prepared>> {
    args.queue.queue.require_lasting("submit")?;
    let flags = args.flags.options();
    // Workers run these jobs: jobs for worker processes are checked as this
    // binary's own workers would take them, not refused for want of any.
    let mut config = EngineConfig::builder();
    if let Some(pc) = ProcessFlags::none().config(None) {
        config = config.process(pc);
    }
    let engine = Engine::new(registry, config.build()?);
    let prepared = args.input.prepare(&engine, &flags)?;
    if prepared.is_empty() {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard submit --queue URL cpu sleep`) or give a job file with -f"
                .into(),
        )
        .into());
    }
    Ok(prepared)
}

/// Enqueues the jobs in batches of [`SUBMIT_BATCH`]; returns their ids.
fn submit(queue: &dyn Queue, prepared: Vec<Prepared>) -> anyhow::Result<Vec<JobId>> {
    let mut ids = Vec::new();
    let mut batch = Vec::with_capacity(SUBMIT_BATCH);
    let mut send = |batch: &mut Vec<_>| -> anyhow::Result<()> {
        let out = queue
            .enqueue(std::mem::take(batch))
            .context("submitting jobs")?;
        ids.extend(out.into_iter().map(|e| e.id()));
        Ok(())
    };
    for p in prepared {
        for _ in 0..p.count {
            batch.push(p.job.clone());
            if batch.len() == SUBMIT_BATCH {
                send(&mut batch)?;
            }
        }
    }
    if !batch.is_empty() {
        send(&mut batch)?;
    }
    Ok(ids)
}

/// Waits until every job in `ids` has ended, then reports on them as `run` does.
fn wait_for(queue: &dyn Queue, ids: &[JobId], color: Color, quiet: bool) -> anyhow::Result<Exit> {
    let start = Instant::now();
    let human = Human::new(true, color);
    let want: BTreeSet<u64> = ids.iter().map(|i| i.0).collect();
    let (Some(&first), Some(&last)) = (want.first(), want.last()) else {
        return Ok(Exit::Success);
    };
    let mut pause = Duration::from_millis(20);
    let views = loop {
        // A job may move between the states looked at: the whole read
        // confirms.
        if !any_unfinished(queue, first, last, &want)? {
            let views = jobs_between(queue, first, last, &want)?;
            if views.iter().all(|v| v.state.is_terminal()) {
                break views;
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    };
    let mut b = SummaryBuilder::new();
    for v in &views {
        b.add(v);
        if !quiet {
            let attempts = v.attempts.len();
            let error = v.last_error().map(|e| format!(" {e}")).unwrap_or_default();
            human.line(&format!(
                "{} {} #{} attempts={attempts}{error}",
                human.state(v.state.as_str()),
                v.task,
                v.id
            ))?;
        }
    }
    let summary = b.finish(start.elapsed(), false);
    if !quiet {
        print_summary(&human, &summary)?;
    }
    Ok(Exit::of_run(false, summary.all_succeeded()))
}

/// Whether a job of `want` has not ended: reads only the unfinished jobs in
/// their id range, so a wait costs less as jobs end.
fn any_unfinished(
    queue: &dyn Queue,
    first: u64,
    last: u64,
    want: &BTreeSet<u64>,
) -> anyhow::Result<bool> {
    for state in [JobState::Running, JobState::Queued, JobState::Scheduled] {
        let mut after = JobId(first - 1);
        loop {
            let page = queue.inspect()?.list(&ListFilter {
                state: Some(state),
                after: Some(after),
                limit: 1000,
                ..ListFilter::default()
            })?;
            for v in &page {
                if v.id.0 > last {
                    break;
                }
                if want.contains(&v.id.0) {
                    return Ok(true);
                }
            }
            match page.last() {
                Some(v) if page.len() == 1000 && v.id.0 < last => after = v.id,
                _ => break,
            }
        }
    }
    Ok(false)
}

/// The jobs of `want`, read a page at a time across their id range.
fn jobs_between(
    queue: &dyn Queue,
    first: u64,
    last: u64,
    want: &BTreeSet<u64>,
) -> anyhow::Result<Vec<JobView>> {
    let mut out = Vec::with_capacity(want.len());
    let mut after = JobId(first - 1);
    loop {
        let page = queue.inspect()?.list(&ListFilter {
            after: Some(after),
            limit: 2000,
            ..ListFilter::default()
        })?;
        let Some(tail) = page.last() else { break };
        after = tail.id;
        let done = page.len() < 2000 || tail.id.0 >= last;
        out.extend(page.into_iter().filter(|v| want.contains(&v.id.0)));
        if done {
            break;
        }
    }
    Ok(out)
}
