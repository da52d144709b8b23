//! Commands for a queue shared by many workers: `submit`, `worker`,
//! `retry`, `cancel`, `prune`, `migrate`.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use runyard::event::{EventSink, JsonLines};
use runyard::queue::{CancelResult, ListFilter, LiveWorker, NameTaken, Queue, WorkerInfo};
use runyard::report::{JobView, SummaryBuilder};
use runyard::{Engine, EngineConfig, JobId, JobState, Mode, Registry};

use crate::args::{
    CancelArgs, Color, MigrateArgs, PruneArgs, QueueFlag, RetryArgs, SubmitArgs, WorkerArgs,
};
use crate::jobs::create_output;
use crate::output::{print_summary, Human, JobLines};
use crate::state::{self, Purpose, QueueUrl};
use crate::UsageError;

/// Jobs per enqueue when submitting (each batch is one transaction).
const SUBMIT_BATCH: usize = 10_000;
/// How often a worker tries again a queue it cannot reach at start-up (as
/// the engine does once it runs).
const QUEUE_RETRY: Duration = Duration::from_secs(1);
/// How often a worker waiting for its queue says so again.
const STILL_WAITING: Duration = Duration::from_secs(60);

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
    let queue = open(&args.queue, Purpose::Share)?;
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
    for id in &ids {
        outln!("{}", id.0)?;
    }
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
    let queue = open_for_worker(&args.queue.queue)?;
    register(&*queue, &WorkerInfo::this_process(name.clone(), args.lease))?;
    let run = engine.start(Arc::clone(&queue), sinks);
    let grace = runyard::duration::format_duration(args.grace);
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
        errln!(
            "runyard worker `{name}` draining {}",
            args.queue.queue.display()
        );
    }
    let out = run.wait();
    // Its name is free at once (were this to fail, once its heartbeat lapses).
    let _ = queue.unregister_worker(&name);
    if let Some(e) = out.error {
        return Err(anyhow::Error::new(e).context("the worker stopped"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a worker's queue. A PostgreSQL server the worker cannot reach is
/// waited for, as a running worker waits for one that went away: tried
/// again every second, for as long as it takes, and said on stderr when the
/// wait begins, each minute it lasts, and when it ends. (An interrupt
/// meanwhile ends the worker at once: it holds nothing yet.)
fn open_for_worker(url: &QueueUrl) -> anyhow::Result<Arc<dyn Queue>> {
    let QueueUrl::Postgres(u) = url else {
        return Ok(state::open(url, Purpose::Share)?.queue);
    };
    let start = Instant::now();
    let mut said: Option<Duration> = None;
    loop {
        let e = match state::try_postgres(u, Purpose::Share) {
            Ok(q) => {
                if said.is_some() {
                    errln!(
                        "runyard worker: the queue answers (after {}); starting",
                        runyard::duration::human_duration(start.elapsed())
                    );
                }
                return Ok(Arc::new(q));
            }
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(state::postgres_refused(e)),
        };
        let waited = start.elapsed();
        match said {
            None => errln!(
                "runyard worker: cannot reach the queue: {e}; trying again every {} until it answers",
                runyard::duration::format_duration(QUEUE_RETRY)
            ),
            Some(at) if waited - at >= STILL_WAITING => errln!(
                "runyard worker: still cannot reach the queue after {}: {e}",
                runyard::duration::human_duration(waited)
            ),
            Some(_) => {}
        }
        if said.is_none_or(|at| waited - at >= STILL_WAITING) {
            said = Some(waited);
        }
        std::thread::sleep(QUEUE_RETRY);
    }
}

/// Registers the worker under its name. A name whose holder still
/// heartbeats is refused (exit 2, naming the holder). A holder whose
/// heartbeats have stopped (it died moments ago, and its registration has
/// not lapsed yet) is waited for until it lapses and the name is taken
/// over: a service restarted at once after a crash starts, instead of
/// failing until then.
fn register(queue: &dyn Queue, me: &WorkerInfo) -> anyhow::Result<()> {
    let mut first: Option<LiveWorker> = None;
    loop {
        let holder = match queue
            .register_worker(me)
            .context("registering the worker")?
        {
            Ok(()) => {
                if first.is_some() {
                    errln!(
                        "runyard worker: the name `{}` was free again; taking it",
                        me.name
                    );
                }
                return Ok(());
            }
            Err(NameTaken(holder)) => holder,
        };
        match &first {
            None => {
                errln!(
                    "runyard worker: the name `{}` is held by pid {} on {} (last heartbeat at {}); \
                     waiting to see whether it still heartbeats (it is taken over if it does not)",
                    me.name, holder.worker.pid, holder.worker.host, holder.last_heartbeat
                );
                first = Some(holder.clone());
            }
            Some(f)
                if (&f.worker, f.started_at, f.last_heartbeat)
                    != (&holder.worker, holder.started_at, holder.last_heartbeat) =>
            {
                return Err(UsageError(format!(
                    "{}; give this worker another --name, or stop that one first",
                    NameTaken(holder)
                ))
                .into());
            }
            Some(_) => {}
        }
        // Ten looks per lease: the holder heartbeats every third of it.
        let pause =
            (holder.worker.lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        std::thread::sleep(pause);
    }
}

pub(crate) fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "retry")?;
    if args.ids.is_empty() && !args.dead {
        return Err(
            UsageError("give job ids to retry, or --dead for every dead job".into()).into(),
        );
    }
    let queue = open(&args.queue, Purpose::Change)?;
    let mut ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "retried")?;
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
        if ids.is_empty() {
            outln!("no dead jobs: nothing to retry")?;
        }
    }
    let mut gone = Vec::new();
    for id in ids {
        if queue.retry(id)? {
            outln!("{id}: queued again")?;
            continue;
        }
        match queue.get(id)? {
            // Deleted since it was looked up (pruned).
            None => gone.push(id),
            Some(v) => outln!(
                "{id}: nothing to do: it is {} (only dead and cancelled jobs are retried)",
                v.state
            )?,
        }
    }
    no_such_jobs(&gone, &args.queue)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    shared_only(&args.queue, "cancel")?;
    let queue = open(&args.queue, Purpose::Change)?;
    let ids: Vec<JobId> = args.ids.iter().map(|i| JobId(*i)).collect();
    all_exist(&*queue, &ids, &args.queue, "cancelled")?;
    let mut gone = Vec::new();
    for (id, r) in ids.iter().zip(queue.cancel(&ids)?) {
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
    Ok(ExitCode::SUCCESS)
}

/// Refuses ids that name no job of the queue, before anything is done to
/// the others.
fn all_exist(queue: &dyn Queue, ids: &[JobId], q: &QueueFlag, done: &str) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for id in ids {
        if queue.get(*id)?.is_none() {
            missing.push(*id);
        }
    }
    no_such_jobs(&missing, q).map_err(|e| e.context(format!("nothing was {done}")))
}

/// An error naming `ids`, unless there are none.
fn no_such_jobs(ids: &[JobId], q: &QueueFlag) -> anyhow::Result<()> {
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
    let q = state::connect_postgres(&url, Purpose::Change)?;
    let n = q.prune(args.older_than, args.dead)?;
    outln!(
        "pruned {n} jobs that finished more than {} ago",
        runyard::duration::format_duration(args.older_than)
    )?;
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
    Ok(ExitCode::SUCCESS)
}
