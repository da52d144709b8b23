//! Commands for a queue shared by many workers: `submit`, `worker`,
//! `retry`, `cancel`, `prune`, `migrate`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use runyard::queue::{CancelResult, ListFilter, Queue};
use runyard::{
    Engine, EngineConfig, EventSink, JobId, JobState, JobView, JsonLines, Mode, Registry,
    SummaryBuilder,
};

use crate::args::{
    CancelArgs, Color, MigrateArgs, PruneArgs, QueueFlag, RetryArgs, SubmitArgs, WorkerArgs,
};
use crate::jobs::create_output;
use crate::output::{print_summary, Human, JobLines};
use crate::state::{self, Purpose, QueueUrl};
use crate::UsageError;

/// Jobs per enqueue when submitting (each batch is one transaction).
const SUBMIT_BATCH: usize = 10_000;

fn open(q: &QueueFlag, purpose: Purpose) -> anyhow::Result<Arc<dyn Queue>> {
    Ok(state::open(&q.queue, purpose)?.queue)
}

fn shared_only(q: &QueueFlag, command: &str) -> anyhow::Result<()> {
    match q.queue {
        QueueUrl::Memory => Err(UsageError(format!(
            "`runyard {command}` needs a queue that outlives the process: --queue postgres://... \
             (or sqlite://PATH on one machine)"
        ))
        .into()),
        _ => Ok(()),
    }
}

pub(crate) fn submit(
    args: SubmitArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "submit")?;
    let flags = args.flags.options();
    // Workers run these jobs: jobs for worker processes are checked as this
    // binary's own workers would take them, not refused for want of any.
    let config = EngineConfig {
        process: crate::process_config(&crate::args::ProcessFlags::none(), None),
        ..EngineConfig::default()
    };
    let engine = Engine::new(registry, config);
    let prepared = args.input.prepare(&engine, &flags)?;
    if prepared.is_empty() {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard submit --queue URL cpu sleep`) or give a job file with -f"
                .into(),
        )
        .into());
    }
    let queue = open(&args.queue, Purpose::Inspect)?;
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
    let mut out = std::io::stdout().lock();
    for id in &ids {
        writeln!(out, "{}", id.0)?;
    }
    drop(out);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait_for(&*queue, &ids, color, args.quiet)
}

/// Waits until every job in `ids` has ended, then reports on them as `run` does.
fn wait_for(
    queue: &dyn Queue,
    ids: &[JobId],
    color: Color,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let human = Human::new(true, color);
    let want: BTreeSet<u64> = ids.iter().map(|i| i.0).collect();
    let (Some(&first), Some(&last)) = (want.first(), want.last()) else {
        return Ok(ExitCode::SUCCESS);
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
            ));
        }
    }
    let summary = b.finish(start.elapsed(), false);
    if !quiet {
        print_summary(&human, &summary);
    }
    Ok(if summary.all_succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
            let page = queue.list(&ListFilter {
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
        let page = queue.list(&ListFilter {
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

pub(crate) fn worker(
    args: WorkerArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "worker")?;
    // A worker claims only jobs it can run: of its own tasks, or of those
    // `--tasks` names. Jobs of other tasks wait for workers that have them.
    let tasks = match &args.tasks {
        None => Some(
            registry
                .iter()
                .map(|t| runyard::queue::TaskName::from(t.name()))
                .collect(),
        ),
        Some(list) => {
            let mut names = Vec::new();
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                registry
                    .lookup(t)
                    .map_err(|e| UsageError(format!("--tasks: {e}")))?;
                names.push(runyard::queue::TaskName::from(t));
            }
            if names.is_empty() {
                return Err(UsageError("--tasks needs at least one task name".into()).into());
            }
            Some(names)
        }
    };
    let mut config = EngineConfig {
        mode: args.mode.unwrap_or(Mode::Auto),
        concurrency: args.concurrency.map(|j| j as usize),
        grace: args.grace,
        lease: args.lease,
        tasks,
        exit_when_drained: false,
        process: crate::process_config(&args.process, None),
        ..EngineConfig::default()
    };
    if let Some(name) = &args.name {
        config.worker_name = name.clone();
    }
    config.check().map_err(|e| UsageError(e.to_string()))?;
    let name = config.worker_name.clone();
    let engine = Engine::new(registry, config);
    let queue = open(&args.queue, Purpose::Inspect)?;
    let human = Human::new(false, color);
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if let Some(p) = &args.events {
        sinks.push(Arc::new(JsonLines::new(create_output(p, "events")?)));
    }
    if !args.quiet {
        sinks.push(Arc::new(JobLines {
            human: human.clone(),
        }));
    }
    let run = engine.start(Arc::clone(&queue), sinks);
    let grace = runyard::format_duration(args.grace);
    crate::on_interrupts(
        run.interrupter(),
        "runyard worker",
        format!(
            "stopping: claiming no more jobs; running attempts may finish (up to {grace}), \
             the rest go back to the queue; interrupt again to cancel them"
        ),
        args.quiet,
    );
    if !args.quiet {
        eprintln!(
            "runyard worker `{name}` draining {}",
            args.queue.queue.display()
        );
    }
    let out = run.wait();
    if let Some(e) = out.error {
        return Err(anyhow::Error::new(e).context("the worker stopped"));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "retry")?;
    if args.ids.is_empty() && !args.dead {
        return Err(
            UsageError("give job ids to retry, or --dead for every dead job".into()).into(),
        );
    }
    let queue = open(&args.queue, Purpose::Inspect)?;
    let mut ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    if args.dead {
        let mut after = None;
        loop {
            let page = queue.list(&ListFilter {
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
    }
    let mut refused = 0;
    for id in ids {
        if queue.retry(id)? {
            println!("{id}: queued again");
        } else {
            refused += 1;
            let why = match queue.get(id)? {
                None => "no such job".to_string(),
                Some(v) => format!(
                    "it is {} (only dead and cancelled jobs are retried)",
                    v.state
                ),
            };
            println!("{id}: not retried: {why}");
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "cancel")?;
    let queue = open(&args.queue, Purpose::Inspect)?;
    let ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    let mut missing = 0;
    for (id, r) in ids.iter().zip(queue.cancel(&ids)?) {
        let what = match r {
            CancelResult::Cancelled => "cancelled".to_string(),
            CancelResult::Requested => "running; its worker is asked to stop it".to_string(),
            CancelResult::AlreadyFinished(s) => format!("already {s}"),
            CancelResult::NotFound => {
                missing += 1;
                "no such job".to_string()
            }
        };
        println!("{id}: {what}");
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn postgres_only(q: &QueueFlag, command: &str) -> anyhow::Result<String> {
    match &q.queue {
        QueueUrl::Postgres(u) => Ok(u.clone()),
        _ => Err(UsageError(format!(
            "`runyard {command}` is for PostgreSQL queues (--queue postgres://...)"
        ))
        .into()),
    }
}

pub(crate) fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let url = postgres_only(&args.queue, "prune")?;
    let q = state::connect_postgres(&url)?;
    let n = q.prune(args.older_than, args.dead)?;
    println!(
        "pruned {n} jobs that finished more than {} ago",
        runyard::format_duration(args.older_than)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = postgres_only(&args.queue, "migrate")?;
    let opts =
        runyard::postgres::PgOptions::from_url(&url).map_err(|e| UsageError(e.to_string()))?;
    let applied = runyard::postgres::PgQueue::migrate(&opts).map_err(|e| {
        if e.kind() == runyard::queue::QueueErrorKind::Incompatible {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e)
        }
    })?;
    if applied.is_empty() {
        println!(
            "{} (schema `{}`) is at version {}: nothing to do",
            opts.url(),
            opts.schema_name(),
            runyard::postgres::SCHEMA_VERSION
        );
    } else {
        for v in applied {
            println!(
                "applied migration {v} to {} (schema `{}`)",
                opts.url(),
                opts.schema_name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
