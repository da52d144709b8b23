//! `runyard submit`: puts jobs in a shared queue for workers to run, and
//! with `--wait` waits for them to end and reports on them.
//!
//! Plan (the queue URL, every job and the `--json` path checked, nothing
//! opened), then submit (the queue opened and checked for what the jobs
//! need, the jobs enqueued in batches with parents first, their ids
//! printed, or with `--json` one object per job), then with `--wait` the
//! report (with `--json`, the report `run --json` writes, for these jobs).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use runyard::queue::{Enqueued, ListFilter, Queue};
use runyard::report::{JobView, SummaryBuilder};
use runyard::{Engine, EngineConfig, JobId, JobState, Registry};

use crate::exit::{Exit, UsageError};
use crate::flags::{Color, FlowFlags, JobFlags, ProcessFlags, QueueFlag};
use crate::jobs::{enqueue, JobInput, Jobs};
use crate::output::human::{cancel_reason, print_summary, state_in, Human};
use crate::output::report::{create_output, is_stdout, OutputPaths};
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

    #[command(flatten)]
    pub(crate) flow: FlowFlags,

    /// Wait until every submitted job has ended, then report on them (exit 1 if any did not succeed).
    #[arg(long)]
    pub(crate) wait: bool,

    /// With --wait: print only errors.
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Write one JSON object per submitted job to FILE (`-` for stdout,
    /// then without the id lines): `{"id", "task", "name", "existing"}`
    /// (and `"replaced": true` for a job that took the new parameters);
    /// with --wait, the report `run --json` writes, for these jobs.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
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
    jobs.check_queue(&*queue)?;
    let json_stdout = args.json.as_deref().is_some_and(is_stdout);
    let mut lines = match (&args.json, args.wait) {
        (Some(p), false) => Some(create_output(p, "job list")?),
        _ => None,
    };
    let mut report = match (&args.json, args.wait) {
        (Some(p), true) => Some(create_output(p, "report")?),
        _ => None,
    };
    let ids = submit(&*queue, &jobs, lines.as_mut(), !json_stdout)?;
    if let Some(mut l) = lines {
        l.flush().context("writing the job list")?;
    }
    if !args.wait {
        return Ok(Exit::Success);
    }
    wait_for(&*queue, &ids, color, args.quiet, report.as_mut())
}

/// The jobs to submit, every one checked; nothing is opened.
fn plan(args: &SubmitArgs, registry: Arc<Registry>) -> anyhow::Result<Jobs> {
    args.queue.queue.require_lasting("submit")?;
    OutputPaths::check(args.json.as_ref(), None)?;
    let flags = args.flow.add_to(args.flags.options());
    // Workers run these jobs: jobs for worker processes are checked as this
    // binary's own workers would take them, not refused for want of any.
    let mut config = EngineConfig::builder();
    if let Some(pc) = ProcessFlags::none().config(None) {
        config = config.process(pc);
    }
    let engine = Engine::new(registry, config.build()?);
    let prepared = args.input.prepare(&engine, &flags)?;
    prepared.refuse_limits()?;
    if prepared.is_empty() {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard submit --queue URL cpu sleep`) or give a job file with -f"
                .into(),
        )
        .into());
    }
    Ok(prepared)
}

/// One line of `--json`: a submitted job.
#[derive(serde::Serialize)]
struct Submitted<'a> {
    id: u64,
    task: &'a str,
    name: Option<&'a str>,
    /// Whether a job with its idempotency key or unique key was already
    /// in the queue (`id` is that job's): nothing was added.
    existing: bool,
    /// Whether that job, of the same unique key, took this one's
    /// parameters and run-at (`on_conflict = "replace"`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replaced: bool,
}

/// Enqueues the jobs in batches of [`SUBMIT_BATCH`], parents first;
/// prints their ids (`print`), writes a JSON object for each to `lines`,
/// and returns the ids.
fn submit(
    queue: &dyn Queue,
    jobs: &Jobs,
    mut lines: Option<&mut Box<dyn Write + Send>>,
    print: bool,
) -> anyhow::Result<Vec<JobId>> {
    let mut ids = Vec::new();
    enqueue(&jobs.list, SUBMIT_BATCH, |batch| {
        let named: Vec<_> = batch
            .iter()
            .map(|j| {
                let key = j.unique.as_ref().map(|u| u.key.clone());
                (j.task.clone(), j.name.clone(), key)
            })
            .collect();
        let out = queue.enqueue(batch).context("submitting jobs")?;
        for (e, (task, name, key)) in out.iter().zip(named) {
            if print {
                outln!("{}", e.id().0)?;
            }
            let why = match &key {
                Some(k) => format!("unique key `{k}`"),
                None => "idempotency key".to_string(),
            };
            match e {
                Enqueued::Duplicate(id) => {
                    errln!("job {id} exists ({why}); nothing added");
                }
                Enqueued::Replaced(id) => {
                    errln!("job {id} exists ({why}); it took the new parameters");
                }
                Enqueued::New(_) => {}
            }
            if let Some(l) = lines.as_mut() {
                let line = Submitted {
                    id: e.id().0,
                    task: task.as_str(),
                    name: name.as_deref(),
                    existing: !matches!(e, Enqueued::New(_)),
                    replaced: matches!(e, Enqueued::Replaced(_)),
                };
                let line = serde_json::to_string(&line)?;
                writeln!(l, "{line}").context("writing the job list")?;
            }
        }
        ids.extend(out.iter().map(|e| e.id()));
        Ok(out)
    })?;
    Ok(ids)
}

/// Waits until every job in `ids` has ended, then reports on them as `run`
/// does (to `report`, the report of `run --json`).
fn wait_for(
    queue: &dyn Queue,
    ids: &[JobId],
    color: Color,
    quiet: bool,
    report: Option<&mut Box<dyn Write + Send>>,
) -> anyhow::Result<Exit> {
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
            let error = match cancel_reason(v, |id| state_in(queue, id)) {
                Some(why) => format!(" {why}"),
                None => v.last_error().map(|e| format!(" {e}")).unwrap_or_default(),
            };
            human.line(&format!(
                "{} {} #{} attempts={attempts}{error}",
                human.state(v.state.as_str()),
                v.task,
                v.id
            ))?;
        }
    }
    let summary = b.finish(start.elapsed(), false);
    if let Some(out) = report {
        write_report(out, &views, &summary).context("writing the report")?;
    }
    if !quiet {
        print_summary(&human, &summary, 0)?;
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
    for state in [
        JobState::Running,
        JobState::Queued,
        JobState::Scheduled,
        JobState::Blocked,
    ] {
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

/// The report of `run --json` (`{"jobs": [...], "summary": {...}}`) for
/// these jobs.
fn write_report(
    out: &mut dyn Write,
    views: &[JobView],
    summary: &runyard::report::Summary,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    out.write_all(b"{\"jobs\": [")?;
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n  ")?;
        serde_json::to_writer(&mut out, v)?;
    }
    out.write_all(b"\n],\n\"summary\": ")?;
    serde_json::to_writer_pretty(&mut out, summary)?;
    out.write_all(b"}\n")?;
    out.flush()
}
