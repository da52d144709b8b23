//! `runyard status`: what a queue or a recorded run holds (counts, live
//! workers, flow control, schedules, dead jobs), or with `--job ID` one job
//! in full ([`job`]).

mod job;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use runyard::queue::{Counts, ListFilter, LiveWorker, Queue};
use runyard::{JobId, JobState, Timestamp};
use serde::Serialize;

use crate::exit::{Exit, UsageError};
use crate::flags::Color;
use crate::output::human::Human;
use crate::queues::{self, Purpose, QueueUrl, QueueUrlParser};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) store: ShownStore,

    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,

    /// Dead jobs to list, at most.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) dead: usize,

    /// Show one job in full: its state, every attempt, its output, the
    /// jobs it is after and the jobs after it.
    #[arg(long, value_name = "ID")]
    pub(crate) job: Option<u64>,
}

/// The queue or recorded run that `status` shows.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "store", multiple = false)]
pub(crate) struct ShownStore {
    /// Show the run recorded in this SQLite file (the same as --queue sqlite://PATH).
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,

    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH
    /// (default: $RUNYARD_QUEUE).
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser)]
    pub(crate) queue: Option<QueueUrl>,
}

impl ShownStore {
    /// The queue named, if any.
    pub(crate) fn url(&self) -> Option<QueueUrl> {
        QueueUrl::from_flags(&self.state, &self.queue)
    }
}

#[derive(Debug, Serialize)]
struct Status {
    queue: String,
    counts: Counts,
    /// A shared queue's activity (PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    activity: Option<ActivityView>,
    /// The live workers (registered, their heartbeat not lapsed), idle
    /// ones too, by name.
    workers: Vec<LiveWorkerView>,
    tasks: Vec<TaskCounts>,
    dead: Vec<DeadJob>,
    /// Flow control, for a queue that keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowView>,
    /// The schedules, for a queue that keeps them.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedules: Option<Vec<super::schedule::ScheduleView>>,
}

/// A queue's stored limits, paused tasks and what holds its waiting jobs.
#[derive(Debug, Serialize)]
struct FlowView {
    limits: Vec<runyard_core::StoredLimit>,
    /// Every task is paused.
    paused_all: bool,
    /// The tasks paused by name.
    paused: Vec<String>,
    /// Each reason that holds due jobs, with how many it holds.
    held: Vec<HeldView>,
}

#[derive(Debug, Serialize)]
struct HeldView {
    hold: runyard_core::Hold,
    jobs: u64,
    /// The reason in words.
    says: String,
}

#[derive(Debug, Serialize)]
struct ActivityView {
    /// Jobs finished per second over the last minute.
    finished_per_s: f64,
    /// Seconds the oldest ready job has waited.
    oldest_ready_age_s: Option<f64>,
    /// Workers holding leases now, with how many jobs each.
    workers: Vec<WorkerView>,
}

#[derive(Debug, Serialize)]
struct WorkerView {
    name: String,
    running: u64,
}

#[derive(Debug, Serialize)]
struct LiveWorkerView {
    name: String,
    host: String,
    pid: u32,
    started_at: Timestamp,
    last_heartbeat: Timestamp,
    /// Seconds after its last heartbeat that it counts as gone.
    lease_s: f64,
    /// Jobs it holds leases on.
    leases: u64,
}

impl From<LiveWorker> for LiveWorkerView {
    fn from(w: LiveWorker) -> LiveWorkerView {
        LiveWorkerView {
            name: w.worker.name,
            host: w.worker.host,
            pid: w.worker.pid,
            started_at: w.started_at,
            last_heartbeat: w.last_heartbeat,
            lease_s: w.worker.lease.as_secs_f64(),
            leases: w.leases,
        }
    }
}

#[derive(Debug, Serialize)]
struct TaskCounts {
    task: String,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Debug, Serialize)]
struct DeadJob {
    id: u64,
    task: String,
    attempts: usize,
    /// The last attempt's outcome and error.
    outcome: Option<String>,
    error: Option<String>,
}

pub(crate) fn main(args: StatusArgs, color: Color) -> anyhow::Result<Exit> {
    let url = plan(&args)?;
    // Read, never created or upgraded. A PostgreSQL queue, opened once,
    // also tells its activity.
    let (queue, pg): (Arc<dyn Queue>, _) = match &url {
        QueueUrl::Postgres(u) => {
            let pg = queues::connect_postgres(u, Purpose::Inspect)?;
            (pg.clone(), Some(pg))
        }
        _ => (queues::open(&url, Purpose::Inspect)?.queue, None),
    };
    let text = if let Some(id) = args.job {
        match job::show(&*queue, JobId(id), args.json, &Human::new(false, color))? {
            Some(t) => t,
            None => {
                return Err(UsageError(format!(
                    "no job with the id {id} in {} (`runyard status` shows its jobs)",
                    url.display()
                ))
                .into())
            }
        }
    } else {
        let activity = pg.as_deref().map(activity).transpose()?;
        let s = read(&*queue, &url, activity, args.dead)?;
        if args.json {
            serde_json::to_string_pretty(&s)? + "\n"
        } else {
            render(&s, queue.now(), &Human::new(false, color))
        }
    };
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(Exit::Success),
    }
}

/// The queue to show, before anything is opened: one that outlives the
/// process.
fn plan(args: &StatusArgs) -> anyhow::Result<QueueUrl> {
    match which_queue(args)? {
        Some(QueueUrl::Memory) => Err(UsageError(
            "a run in memory ends with its process: give --state PATH or --queue sqlite://PATH"
                .into(),
        )
        .into()),
        Some(u) => Ok(u),
        None => Err(UsageError(
            "which queue? give --state PATH, --queue sqlite://PATH or --queue postgres://... \
             (or set RUNYARD_QUEUE)"
                .into(),
        )
        .into()),
    }
}

/// A PostgreSQL queue's activity over the last minute.
fn activity(pg: &runyard::postgres::PgQueue) -> anyhow::Result<ActivityView> {
    let a = pg.activity(std::time::Duration::from_secs(60))?;
    let now = pg.now();
    Ok(ActivityView {
        finished_per_s: a.finished_in_window as f64 / a.window.as_secs_f64(),
        oldest_ready_age_s: a.oldest_ready.map(|t| now.since(t).as_secs_f64()),
        workers: a
            .workers
            .into_iter()
            .map(|(name, running)| WorkerView { name, running })
            .collect(),
    })
}

/// What `status` shows of `q`, with at most `dead` dead jobs.
fn read(
    q: &dyn Queue,
    url: &QueueUrl,
    activity: Option<ActivityView>,
    dead: usize,
) -> anyhow::Result<Status> {
    // The totals are the tasks' counts summed: one read of the queue.
    let tasks = q.inspect()?.counts_by_task()?;
    let mut counts = Counts::default();
    for (_, c) in &tasks {
        counts += c;
    }
    Ok(Status {
        queue: url.display(),
        activity,
        workers: q
            .inspect()?
            .live_workers()?
            .into_iter()
            .map(Into::into)
            .collect(),
        counts,
        tasks: tasks
            .into_iter()
            .map(|(task, counts)| TaskCounts { task, counts })
            .collect(),
        dead: dead_jobs(q, dead)?,
        flow: flow_view(q)?,
        schedules: match q.as_schedules() {
            Some(s) => Some(s.list_schedules()?.iter().map(Into::into).collect()),
            None => None,
        },
    })
}

/// The flow control of `q`, if it keeps it.
fn flow_view(q: &dyn Queue) -> anyhow::Result<Option<FlowView>> {
    let Some(f) = q.as_flow() else {
        return Ok(None);
    };
    let paused = f.paused()?;
    Ok(Some(FlowView {
        limits: f.limits()?,
        paused_all: paused.all,
        paused: paused.tasks,
        held: f
            .holds()?
            .held
            .into_iter()
            .map(|(hold, jobs)| HeldView {
                says: super::flow::hold_text(&hold),
                hold,
                jobs,
            })
            .collect(),
    }))
}

/// The queue named by --state or --queue, or else by `RUNYARD_QUEUE`.
fn which_queue(args: &StatusArgs) -> anyhow::Result<Option<QueueUrl>> {
    if let Some(u) = args.store.url() {
        return Ok(Some(u));
    }
    match std::env::var("RUNYARD_QUEUE") {
        Ok(v) if !v.is_empty() => queues::parse_queue_url(&v)
            .map(Some)
            .map_err(|e| UsageError(format!("RUNYARD_QUEUE: {e}")).into()),
        _ => Ok(None),
    }
}

fn dead_jobs(q: &dyn Queue, limit: usize) -> anyhow::Result<Vec<DeadJob>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let page = q.inspect()?.list(&ListFilter {
        state: Some(JobState::Dead),
        limit,
        ..ListFilter::default()
    })?;
    Ok(page
        .into_iter()
        .map(|v| {
            let last = v.attempts.last();
            DeadJob {
                id: v.id.0,
                task: v.task.clone(),
                attempts: v.attempts.len(),
                outcome: last.map(|a| a.outcome.to_string()),
                error: v.last_error().map(str::to_string),
            }
        })
        .collect())
}

fn render(s: &Status, now: Timestamp, human: &Human) -> String {
    let mut out = String::new();
    let c = &s.counts;
    let _ = writeln!(out, "{}: {}", s.queue, queues::describe(c));
    if let Some(a) = &s.activity {
        let _ = writeln!(
            out,
            "finished {:.1} jobs/s over the last minute; oldest ready job waiting {}",
            a.finished_per_s,
            a.oldest_ready_age_s
                .map_or("-".to_string(), |s| runyard::duration::human_duration(
                    std::time::Duration::from_secs_f64(s)
                )),
        );
    }
    let n = s.workers.len();
    if n == 0 {
        let _ = writeln!(out, "no live workers");
    } else {
        let _ = writeln!(out, "{n} live worker{}:", if n == 1 { "" } else { "s" });
    }
    let leases = |n: u64| format!("{n} lease{}", if n == 1 { "" } else { "s" });
    for w in &s.workers {
        let _ = writeln!(
            out,
            "  {}  pid {} on {}, since {}, last heartbeat {} ago, holding {}",
            w.name,
            w.pid,
            w.host,
            w.started_at,
            runyard::duration::human_duration(now.since(w.last_heartbeat)),
            leases(w.leases)
        );
    }
    // Leases held by no live worker: a worker that died, its leases not yet
    // expired and rescued.
    for w in s.activity.iter().flat_map(|a| &a.workers) {
        if !s.workers.iter().any(|l| l.name == w.name) {
            let _ = writeln!(
                out,
                "  {}  not live, holding {} (they are rescued once they expire)",
                w.name,
                leases(w.running)
            );
        }
    }
    let width = s
        .tasks
        .iter()
        .map(|t| t.task.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{}",
        human.bold(&format!(
            "{:<width$}  {:>8}  {:>9}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}  {:>7}",
            "task",
            "jobs",
            "succeeded",
            "dead",
            "cancelled",
            "queued",
            "scheduled",
            "blocked",
            "running"
        ))
    );
    for t in &s.tasks {
        let k = &t.counts;
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>9}  {:>6}  {:>9}  {:>7}  {:>9}  {:>7}  {:>7}",
            t.task,
            k.total(),
            k.succeeded,
            k.dead,
            k.cancelled,
            k.queued,
            k.scheduled,
            k.blocked,
            k.running
        );
    }
    if let Some(f) = &s.flow {
        render_flow(&mut out, f, human);
    }
    if let Some(views) = s.schedules.as_deref().filter(|v| !v.is_empty()) {
        let _ = writeln!(out, "\n{}", human.bold("schedules:"));
        for line in super::schedule::table(views) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !s.dead.is_empty() {
        let shown = if (s.dead.len() as u64) < c.dead {
            format!(" (first {} of {})", s.dead.len(), c.dead)
        } else {
            String::new()
        };
        let _ = writeln!(out, "\n{}", human.bold(&format!("dead jobs{shown}:")));
        for d in &s.dead {
            let _ = writeln!(
                out,
                "  #{} {} after {} attempt{}: {}{}",
                d.id,
                d.task,
                d.attempts,
                if d.attempts == 1 { "" } else { "s" },
                d.outcome.as_deref().unwrap_or("-"),
                d.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

fn render_flow(out: &mut String, f: &FlowView, human: &Human) {
    if f.paused_all {
        let _ = writeln!(out, "\npaused: every task (`runyard task resume --all`)");
    } else if !f.paused.is_empty() {
        let tasks: Vec<String> = f.paused.iter().map(|t| format!("`{t}`")).collect();
        let _ = writeln!(out, "\npaused: {}", tasks.join(", "));
    }
    if !f.limits.is_empty() {
        let _ = writeln!(out, "\n{}", human.bold("stored limits:"));
        for l in &f.limits {
            let _ = writeln!(out, "  {}", super::flow::limit_line(l));
        }
    }
    if !f.held.is_empty() {
        let _ = writeln!(out, "\n{}", human.bold("waiting jobs held:"));
        for h in &f.held {
            let _ = writeln!(out, "  {} held: {}", h.jobs, h.says);
        }
    }
}
