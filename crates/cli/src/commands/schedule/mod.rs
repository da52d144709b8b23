//! `runyard schedule`: schedules kept in a shared queue (an SQLite state
//! file or PostgreSQL), whose ticks every worker fires, each once
//! (docs/schedules.md).
//!
//! Each command checks what it is given (the name, the spec and zone, the
//! policy, the jobs, built as `submit` builds them) before it opens the
//! queue; `sync` checks the whole file, and what the queue would refuse of
//! every schedule in it, before it writes the first.

mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use runyard::queue::{admit, Queue};
use runyard::{Engine, EngineConfig, Registry};
use runyard_core::{check_schedule_name, Spec};
use runyard_queue::{encode_jobs, Put, ScheduleDef, ScheduleInfo, Schedules};

pub(crate) use self::view::{table, ScheduleView};
use crate::exit::{Exit, UsageError};
use crate::flags::{parse_at_least_one_u32, FlowFlags, JobFlags, ProcessFlags};
use crate::jobs::{policy_of, read_sync_file, spec_of, JobInput, Part, SpecInput, Uses};
use crate::queues::{self, Purpose, QueueUrl, QueueUrlParser};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
runyard schedule add nightly --queue URL --cron \"0 3 * * *\" --tz Europe/Berlin shell:cmd='[\"./report.sh\"]'\n  \
runyard schedule add poll --queue URL --every 30s --overlap skip http:url=https://example.com/health\n  \
runyard schedule add etl --queue URL --cron @hourly -f etl.toml      one workflow per tick\n  \
runyard schedule list --queue URL\n  \
runyard schedule sync --queue URL -f schedules.toml --prune --dry-run\n\n\
Every `runyard worker` on the queue fires due ticks; each tick makes one submission.\n\
See docs/schedules.md.")]
pub(crate) struct ScheduleArgs {
    #[command(subcommand)]
    pub(crate) command: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Add a schedule, or change the one of that name.
    Add(Box<AddArgs>),
    /// List the schedules: spec, zone, next tick, paused, last fire and its job's state.
    List(ListArgs),
    /// Pause a schedule: no tick fires until it is resumed.
    Pause(NameArgs),
    /// Resume a paused schedule (the ticks missed meanwhile follow its catch-up policy).
    Resume(NameArgs),
    /// Remove a schedule (the jobs it made stay).
    Remove(NameArgs),
    /// Fire a schedule now, outside its ticks; prints the ids of its jobs.
    Run(NameArgs),
    /// Make the queue's schedules match a file of [[schedule]] entries.
    Sync(SyncArgs),
}

/// The queue that keeps the schedules.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScheduleQueue {
    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH.
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser, env = "RUNYARD_QUEUE")]
    pub(crate) queue: Option<QueueUrl>,
}

impl ScheduleQueue {
    /// The queue named, refused when it cannot keep schedules.
    fn url(&self) -> Result<&QueueUrl, UsageError> {
        match &self.queue {
            Some(QueueUrl::Memory) | None => Err(UsageError(
                "schedules live in a queue: give --queue sqlite://FILE or a PostgreSQL URL".into(),
            )),
            Some(u) => Ok(u),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The schedule's name: 1 to 200 of A-Z a-z 0-9 _ . : -
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) queue: ScheduleQueue,

    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly.
    #[arg(long, value_name = "EXPR", conflicts_with = "every")]
    pub(crate) cron: Option<String>,

    /// The IANA time zone the cron expression is read in (default UTC), e.g. Europe/Berlin.
    #[arg(long, value_name = "ZONE", requires = "cron")]
    pub(crate) tz: Option<String>,

    /// An interval, at least 1s: ticks at whole intervals from when the schedule is added, e.g. 30s, 15m, 1h.
    #[arg(long, value_name = "DURATION")]
    pub(crate) every: Option<String>,

    /// `allow`: a tick fires while the last tick's job has not ended (default); `skip`: it is skipped.
    #[arg(long, value_name = "allow|skip")]
    pub(crate) overlap: Option<String>,

    /// A tick not fired within this long of its time is missed (default 1m).
    #[arg(long, value_name = "DURATION")]
    pub(crate) misfire_grace: Option<String>,

    /// Which missed ticks fire late: none, latest (default) or all (up to --catch-up-max).
    #[arg(long, value_name = "none|latest|all")]
    pub(crate) catch_up: Option<String>,

    /// With --catch-up all: at most this many missed ticks fire late (default 100).
    #[arg(long, value_name = "N", value_parser = parse_at_least_one_u32)]
    pub(crate) catch_up_max: Option<u32>,

    /// The job each tick submits: TASK[:KEY=VALUE,...] (no *COUNT).
    #[arg(value_name = "JOB", conflicts_with = "file")]
    pub(crate) job: Option<String>,

    /// A job file holding one [[job]], or one workflow (jobs linked by `after`): one submission per tick.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) flags: JobFlags,

    #[command(flatten)]
    pub(crate) flow: FlowFlags,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) queue: ScheduleQueue,

    /// Print JSON: one object per schedule.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The schedule's name.
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) queue: ScheduleQueue,
}

#[derive(Debug, Args)]
#[command(after_help = "A sync file:\n  \
[[schedule]]\n  \
name = \"nightly-report\"\n  \
cron = \"0 3 * * *\"           # or every = \"15m\"\n  \
tz = \"Europe/Berlin\"         # for cron; default UTC\n  \
overlap = \"skip\"             # allow (default) | skip\n  \
misfire_grace = \"5m\"         # default 1m\n  \
catch_up = \"latest\"          # none | latest (default) | all\n  \
catch_up_max = 10            # with catch_up = \"all\"; default 100\n  \
task = \"shell\"               # the job's keys, as in a job file's [[job]]\n  \
params = { cmd = [\"./report.sh\"] }\n  \
max_attempts = 3\n\n  \
[[schedule]]\n  \
name = \"etl\"\n  \
every = \"1h\"\n  \
file = \"etl.toml\"            # a job file: one job or a workflow, relative to this file")]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) queue: ScheduleQueue,

    /// The file of [[schedule]] entries.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// Remove the queue's schedules that the file does not have (without it they are kept).
    #[arg(long)]
    pub(crate) prune: bool,

    /// Print what would change, and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) fn main(args: ScheduleArgs, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    match args.command {
        ScheduleCommand::Add(a) => add(*a, registry),
        ScheduleCommand::List(a) => list(&a),
        ScheduleCommand::Pause(a) => pause(&a, true),
        ScheduleCommand::Resume(a) => pause(&a, false),
        ScheduleCommand::Remove(a) => remove(&a),
        ScheduleCommand::Run(a) => run_now(&a),
        ScheduleCommand::Sync(a) => sync(&a, registry),
    }
}

/// An engine that builds jobs as `submit` does: for this binary's workers,
/// worker processes included.
fn job_engine(registry: Arc<Registry>) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::builder();
    if let Some(pc) = ProcessFlags::none().config(None) {
        config = config.process(pc);
    }
    Ok(Engine::new(registry, config.build()?))
}

fn open(url: &QueueUrl, purpose: Purpose) -> anyhow::Result<Arc<dyn Queue>> {
    Ok(queues::open(url, purpose)?.queue)
}

fn schedules_of<'a>(queue: &'a dyn Queue, url: &QueueUrl) -> anyhow::Result<&'a dyn Schedules> {
    queue.as_schedules().ok_or_else(|| {
        UsageError(format!(
            "{} keeps no schedules (its schema is older than this runyard: run `runyard \
             migrate`, or open it with `runyard worker` once)",
            url.display()
        ))
        .into()
    })
}

/// The schedule `args` describe, checked; nothing is opened.
fn plan_add(args: &AddArgs, registry: Arc<Registry>) -> anyhow::Result<ScheduleDef> {
    check_schedule_name(&args.name).map_err(|e| UsageError(e.to_string()))?;
    let spec = spec_of(&SpecInput {
        cron: args.cron.as_deref(),
        tz: args.tz.as_deref(),
        every: args.every.as_deref(),
    })
    .map_err(|(part, why)| {
        let flag = match part {
            Part::Cron => "--cron: ",
            Part::Tz => "--tz: ",
            Part::Every => "--every: ",
            Part::Whole => "",
        };
        UsageError(format!("{flag}{why}"))
    })?;
    let policy = policy_of(
        args.overlap.as_deref(),
        args.misfire_grace.as_deref(),
        args.catch_up.as_deref(),
        args.catch_up_max.map(i64::from),
    )
    .map_err(|(key, why)| UsageError(format!("--{}: {why}", key.replace('_', "-"))))?;
    let input = JobInput {
        jobs: args.job.iter().cloned().collect(),
        files: args.file.iter().cloned().collect(),
    };
    if input.jobs.is_empty() && input.files.is_empty() {
        return Err(UsageError(
            "say what each tick runs: a job (e.g. `cpu:n=5000`) or a job file with -f FILE".into(),
        )
        .into());
    }
    let engine = job_engine(registry)?;
    let options = args.flow.add_to(args.flags.options());
    let jobs = input.prepare_for(&engine, &options, Uses::Schedule)?;
    Ok(ScheduleDef {
        name: args.name.clone(),
        spec,
        policy,
        jobs: jobs.submission()?,
    })
}

/// Refuses, before anything is written, jobs the queue cannot keep.
fn check_jobs(queue: &dyn Queue, def: &ScheduleDef) -> Result<(), UsageError> {
    admit(&queue.capabilities(), &def.jobs).map_err(|e| {
        UsageError(format!(
            "schedule `{}`: {e} (nothing was changed)",
            def.name
        ))
    })
}

fn add(args: AddArgs, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    let url = args.queue.url()?.clone();
    let def = plan_add(&args, registry)?;
    let queue = open(&url, Purpose::Share)?;
    let s = schedules_of(&*queue, &url)?;
    check_jobs(&*queue, &def)?;
    let put = s.put_schedule(&def).context("storing the schedule")?;
    outln!("{}", put_line(s, &def, put, false)?)?;
    Ok(Exit::Success)
}

/// What a put did, in words, with the schedule's next tick.
fn put_line(
    s: &dyn Schedules,
    def: &ScheduleDef,
    put: Put,
    dry_run: bool,
) -> anyhow::Result<String> {
    let what = match (put, dry_run) {
        (Put::Added, false) => "added",
        (Put::Changed, false) => "changed",
        (Put::Unchanged, false) => "unchanged",
        (Put::Added, true) => "would add",
        (Put::Changed, true) => "would change",
        (Put::Unchanged, true) => "unchanged",
    };
    let zone = def
        .spec
        .zone()
        .map(|z| format!(" in {z}"))
        .unwrap_or_default();
    let mut line = format!("{what} schedule `{}`: {}{zone}", def.name, def.spec);
    if !dry_run {
        match s.schedule(&def.name)? {
            Some(info) if info.paused => line.push_str(" (paused)"),
            Some(ScheduleInfo {
                next_tick: Some(t), ..
            }) => line.push_str(&format!("; next tick {t}")),
            _ => line.push_str("; no tick to come"),
        }
    }
    Ok(line)
}

fn list(args: &ListArgs) -> anyhow::Result<Exit> {
    let url = args.queue.url()?;
    let queue = open(url, Purpose::Inspect)?;
    let all = schedules_of(&*queue, url)?
        .list_schedules()
        .context("reading the schedules")?;
    let views: Vec<ScheduleView> = all.iter().map(ScheduleView::from).collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&views)?)?;
        return Ok(Exit::Success);
    }
    if views.is_empty() {
        outln!("no schedules in {}", url.display())?;
        return Ok(Exit::Success);
    }
    for line in table(&views) {
        outln!("{line}")?;
    }
    Ok(Exit::Success)
}

fn no_such(name: &str, url: &QueueUrl) -> anyhow::Error {
    UsageError(format!(
        "no schedule named `{name}` in {} (`runyard schedule list` shows them)",
        url.display()
    ))
    .into()
}

fn pause(args: &NameArgs, paused: bool) -> anyhow::Result<Exit> {
    let url = args.queue.url()?;
    let queue = open(url, Purpose::Change)?;
    let s = schedules_of(&*queue, url)?;
    if !s.pause_schedule(&args.name, paused)? {
        return Err(no_such(&args.name, url));
    }
    if paused {
        outln!(
            "paused schedule `{}`: no tick fires until it is resumed",
            args.name
        )?;
    } else {
        let next = s
            .schedule(&args.name)?
            .and_then(|i| i.next_tick)
            .map(|t| format!("; next tick {t}"))
            .unwrap_or_default();
        outln!("resumed schedule `{}`{next}", args.name)?;
    }
    Ok(Exit::Success)
}

fn remove(args: &NameArgs) -> anyhow::Result<Exit> {
    let url = args.queue.url()?;
    let queue = open(url, Purpose::Change)?;
    if !schedules_of(&*queue, url)?.remove_schedule(&args.name)? {
        return Err(no_such(&args.name, url));
    }
    outln!("removed schedule `{}` (the jobs it made stay)", args.name)?;
    Ok(Exit::Success)
}

fn run_now(args: &NameArgs) -> anyhow::Result<Exit> {
    let url = args.queue.url()?;
    let queue = open(url, Purpose::Share)?;
    let Some(fired) = schedules_of(&*queue, url)?.fire_now(&args.name)? else {
        return Err(no_such(&args.name, url));
    };
    for id in &fired.jobs {
        outln!("{}", id.0)?;
    }
    errln!(
        "fired schedule `{}` at {} ({} job{})",
        fired.schedule,
        fired.tick,
        fired.jobs.len(),
        if fired.jobs.len() == 1 { "" } else { "s" }
    );
    Ok(Exit::Success)
}

/// What `put_schedule` would do with `def` where `old` is stored.
fn would_put(old: Option<&ScheduleInfo>, def: &ScheduleDef) -> Put {
    let Some(old) = old else { return Put::Added };
    let same_spec = match (&old.def.spec, &def.spec) {
        (Spec::Every { every: a, .. }, Spec::Every { every: b, .. }) => a == b,
        (a, b) => a == b,
    };
    let same = same_spec
        && old.def.policy == def.policy
        && encode_jobs(&old.def.jobs) == encode_jobs(&def.jobs);
    if same {
        Put::Unchanged
    } else {
        Put::Changed
    }
}

fn sync(args: &SyncArgs, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    let url = args.queue.url()?;
    let engine = job_engine(registry)?;
    let defs = read_sync_file(&engine, &args.file, &runyard::JobOptions::default())?;
    let purpose = if args.dry_run {
        Purpose::Inspect
    } else {
        Purpose::Share
    };
    let queue = open(url, purpose)?;
    let s = schedules_of(&*queue, url)?;
    for def in &defs {
        check_jobs(&*queue, def)?;
    }
    let stored: BTreeMap<String, ScheduleInfo> = s
        .list_schedules()
        .context("reading the schedules")?
        .into_iter()
        .map(|i| (i.def.name.clone(), i))
        .collect();
    for def in &defs {
        let put = if args.dry_run {
            would_put(stored.get(&def.name), def)
        } else {
            s.put_schedule(def)
                .with_context(|| format!("storing the schedule `{}`", def.name))?
        };
        outln!("{}", put_line(s, def, put, args.dry_run)?)?;
    }
    for name in stored.keys() {
        if defs.iter().any(|d| d.name == *name) {
            continue;
        }
        match (args.prune, args.dry_run) {
            (true, true) => outln!("would remove schedule `{name}` (not in the file)")?,
            (true, false) => {
                s.remove_schedule(name)
                    .with_context(|| format!("removing the schedule `{name}`"))?;
                outln!("removed schedule `{name}` (not in the file; its jobs stay)")?;
            }
            (false, _) => outln!("kept schedule `{name}` (not in the file; --prune removes it)")?,
        }
    }
    Ok(Exit::Success)
}
