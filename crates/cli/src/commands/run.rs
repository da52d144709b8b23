//! `runyard run`: runs jobs in this process and reports on them.
//!
//! In three steps, each a function of its own:
//!
//! 1. [`plan`]: the flags, the jobs (each one read and checked), the
//!    engine's configuration and every output path are checked; nothing is
//!    opened or written, so a refusal (exit 2) leaves nothing behind;
//! 2. [`execute`]: the queue (a state file) is opened, the outputs are
//!    created, the run starts with the interrupt handler and the progress
//!    bar, its jobs are submitted and it is waited for;
//!
//!    in memory the queue forgets each job once the report's thread has
//!    read it (for `--json` and the summary: `output/report.rs`), and the
//!    jobs of a file with no dependencies are submitted as the run makes
//!    room ([`Backlog`]), so a run of ten million jobs holds the records
//!    of a bounded number at a time;
//! 3. [`report`]: the summary, the report and events files finished, and
//!    the exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use runyard::event::EventSink;
use runyard::queue::{ListFilter, MemoryQueue, Queue};
use runyard::report::HeldJobs;
use runyard::{Engine, EngineConfig, JobState, Mode, Registry, ReportReader, Run};

use super::flow::held_now;
use crate::exit::{Exit, UsageError};
use crate::flags::{
    parse_at_least_one, parse_positive_duration, Color, FlowFlags, JobFlags, ProcessFlags,
};
use crate::interrupt::{on_interrupts, Interrupts};
use crate::jobs::{enqueue, JobInput, Jobs, Prepared};
use crate::output::human::{print_summary, Human, JobLines};
use crate::output::progress::ProgressView;
use crate::output::report::{check_outputs, is_stdout, split_end, OutputPaths, RunOutputs};
use crate::queues::{self, Opened, Purpose, QueueUrl, QueueUrlParser};
use crate::reporting::Reporting;

#[derive(Debug, Args)]
#[command(after_long_help = crate::jobs::SYNTAX_HELP)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) input: JobInput,

    #[command(flatten)]
    pub(crate) flags: JobFlags,

    #[command(flatten)]
    pub(crate) flow: FlowFlags,

    #[command(flatten)]
    pub(crate) process: ProcessFlags,

    /// Attempts running at once (in thread mode, the pool's size); default: the cores.
    ///
    /// In thread mode (a thread per attempt) and process mode (a worker
    /// process per attempt) at most 4096, and what the process's limits
    /// leave: RLIMIT_NPROC (`ulimit -u`, threads and processes of the user,
    /// 3 per worker process) and, for worker processes, RLIMIT_NOFILE
    /// (`ulimit -n`, 10 descriptors each); more is refused before anything
    /// runs. In async and auto modes it caps the attempts in flight (async
    /// mode's default is 10,000).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_at_least_one)]
    pub(crate) concurrency: Option<u64>,

    /// After Ctrl-C, how long running attempts may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) grace: Duration,

    /// Write the full report as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Write every job state transition as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) events: Option<PathBuf>,

    /// Print only errors (no progress, no job lines, no summary).
    #[arg(short, long)]
    pub(crate) quiet: bool,

    #[command(flatten)]
    pub(crate) store: StoreFlags,

    /// Resume the run recorded in the state file: run its unfinished jobs
    /// (an interrupted attempt counts as one), then report on every job.
    #[arg(long, requires = "store")]
    pub(crate) resume: bool,

    /// With --resume: give dead and cancelled jobs a fresh set of attempts too.
    #[arg(long, requires = "resume")]
    pub(crate) retry_dead: bool,
}

/// Where a run is recorded.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "store", multiple = false)]
pub(crate) struct StoreFlags {
    /// Record the run in this SQLite file, so that it survives a crash and
    /// can be resumed (the same as --queue sqlite://PATH).
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,

    /// The queue: memory (the default) or sqlite://PATH. (A PostgreSQL
    /// queue is filled by `runyard submit` and drained by `runyard worker`.)
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser)]
    pub(crate) queue: Option<QueueUrl>,
}

impl StoreFlags {
    /// The queue named, if any.
    pub(crate) fn url(&self) -> Option<QueueUrl> {
        QueueUrl::from_flags(&self.state, &self.queue)
    }
}

/// A run, checked: what [`execute`] needs, with nothing opened yet.
struct Plan {
    engine: Engine,
    url: QueueUrl,
    purpose: Purpose,
    jobs: Jobs,
    outputs: OutputPaths,
    human: Human,
}

/// A run that has ended, for [`report`].
struct Ran {
    /// The run's registration as the one reporting its state file, held
    /// until its report is written (`reporting.rs`). First: dropped (the
    /// registration ended) while the queue is still open.
    _reporting: Option<Reporting>,
    opened: Opened,
    /// The queue in memory, which forgets the jobs read.
    forget: Option<Arc<MemoryQueue>>,
    outputs: RunOutputs,
    ended: ReportReader,
    /// The queue failure that stopped the run early, if any.
    stopped: Option<runyard::queue::QueueError>,
    interrupts: Interrupts,
    /// What held the jobs not yet started at the first interrupt.
    held: Vec<HeldJobs>,
    human: Human,
}

pub(crate) fn main(args: RunArgs, color: Color, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    let plan = plan(&args, color, registry)?;
    let ran = execute(&args, plan)?;
    report(&args, ran)
}

/// Checks everything before anything is opened: the flags, the engine's
/// configuration, the queue URL, every job, and the output paths.
fn plan(args: &RunArgs, color: Color, registry: Arc<Registry>) -> anyhow::Result<Plan> {
    let json_stdout = args.json.as_deref().is_some_and(is_stdout);
    let events_stdout = args.events.as_deref().is_some_and(is_stdout);
    if json_stdout && events_stdout {
        return Err(UsageError(
            "--json - and --events - cannot both write to standard output; give one of them a file"
                .into(),
        )
        .into());
    }
    let human = Human::new(json_stdout || events_stdout, color);
    let mut config = EngineConfig::builder()
        .mode(args.flags.mode.unwrap_or(Mode::Auto))
        .grace(args.grace);
    if let Some(j) = args.concurrency {
        config = config.concurrency(j as usize);
    }
    if let Some(pc) = args.process.config(None) {
        config = config.process(pc);
    }
    let config = config.build().map_err(|e| UsageError(e.to_string()))?;
    let engine = Engine::new(registry, config);

    let url = args.store.url().unwrap_or(QueueUrl::Memory);
    if let QueueUrl::Postgres(_) = url {
        return Err(UsageError(
            "a PostgreSQL queue is shared by workers on many machines: put jobs in it with \
             `runyard submit --queue URL` (add --wait to wait for them) and drain it with \
             `runyard worker --queue URL`"
                .into(),
        )
        .into());
    }
    if args.resume {
        check_resume(args, &url)?;
    }
    let mut jobs = args
        .input
        .prepare(&engine, &args.flow.add_to(args.flags.options()))?;
    jobs.apply_limits();
    if jobs.is_empty() && !args.resume {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard run cpu sleep`) or give a job file with -f; `runyard list` shows the tasks"
                .into(),
        )
        .into());
    }
    if !args.resume {
        check_process_flags(&args.process, &jobs.list, &engine, args.quiet)?;
    }
    jobs.refuse_ids(
        "a run starts with an empty queue: name a job of this run's files, or put the jobs \
         in a shared queue with `runyard submit`",
    )?;
    let outputs = OutputPaths::check(args.json.as_ref(), args.events.as_ref())?;
    Ok(Plan {
        engine,
        url,
        purpose: if args.resume {
            Purpose::Resume
        } else {
            Purpose::NewRun
        },
        jobs,
        outputs,
        human,
    })
}

/// Opens the queue and the outputs, runs the jobs, and waits for the run.
fn execute(args: &RunArgs, plan: Plan) -> anyhow::Result<Ran> {
    let Plan {
        engine,
        url,
        purpose,
        jobs,
        outputs,
        human,
    } = plan;
    // In memory: a queue that forgets each job the report's thread read.
    let forget = (url == QueueUrl::Memory).then(|| Arc::new(MemoryQueue::new().forgetting(1)));
    let opened = match &forget {
        Some(q) => Opened {
            queue: Arc::clone(q) as Arc<dyn Queue>,
            file: None,
        },
        None => queues::open(&url, purpose)?,
    };
    let queue = Arc::clone(&opened.queue);
    let reporting = opened
        .file
        .is_some()
        .then(|| Reporting::start(&queue))
        .flatten();
    if args.resume {
        check_tasks(&*queue, &engine)?;
        if args.retry_dead {
            retry_dead(&*queue)?;
        }
    }
    jobs.check_queue(&*queue)?;
    let mut outputs = outputs.open()?;

    let mut sinks: Vec<Arc<dyn EventSink>> = outputs.events_sink().into_iter().collect();
    if !args.quiet && !human.is_terminal {
        sinks.push(Arc::new(JobLines {
            human: human.clone(),
            queue: Arc::clone(&queue),
        }));
    }
    let backlog = forget.clone().map(|q| Arc::new(Backlog::new(q)));
    // Last: a job is read (and forgotten) once every other sink saw it end.
    sinks.extend(outputs.report_sink(Arc::clone(&queue), forget.clone()));
    let run = engine.start_with_sinks(Arc::clone(&queue), sinks)?;
    let grace = runyard::duration::format_duration(args.grace);
    // What held the jobs not yet started, taken at the first interrupt
    // (before running attempts end and free their slots), for the report.
    let held: Arc<OnceLock<Vec<HeldJobs>>> = Arc::default();
    // The handler outlives the run: it holds the queue weakly, so that the
    // queue is closed (an SQLite file checkpointed) when the run ends.
    let interrupt = {
        let (queue, held, interrupt) =
            (Arc::downgrade(&queue), Arc::clone(&held), run.interrupter());
        let backlog = backlog.clone();
        move || {
            if let Some(queue) = queue.upgrade() {
                held.get_or_init(|| held_now(&*queue));
            }
            interrupt();
            if let Some(b) = &backlog {
                b.stop();
            }
        }
    };
    let interrupts = on_interrupts(
        interrupt,
        "runyard",
        format!(
            "interrupted: starting no more jobs; running attempts may finish (up to {grace}); \
             interrupt again to cancel them"
        ),
        args.quiet,
    );

    let total: u64 = jobs.total() + queue.counts().map_or(0, |c| c.total());
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let source = run.progress_source();
        let queue = Arc::downgrade(&queue);
        let held = move || queue.upgrade().map(|q| held_now(&*q)).unwrap_or_default();
        ProgressView::start(total, move || source().ok(), held)
    });
    submit(&run, jobs, opened.file.is_some(), backlog.as_deref())?;
    run.close();
    let ended = run.join();

    if let Some(p) = progress {
        p.finish();
    }
    let (ended, stopped) = split_end(ended)?;
    Ok(Ran {
        opened,
        forget,
        outputs,
        ended,
        stopped,
        interrupts,
        held: held.get().cloned().unwrap_or_default(),
        human,
        _reporting: reporting,
    })
}

/// The environment variable that makes `run` say, at its end on
/// standard error, how many job records its memory queue held at once
/// (for tests).
pub(crate) const DEBUG_HELD_VAR: &str = "RUNYARD_RUN_DEBUG_HELD";

/// Says on standard error how many job records `queue` held at most, and
/// holds now (`RUNYARD_RUN_DEBUG_HELD`, `RUNYARD_EXEC_DEBUG_HELD`).
pub(crate) fn debug_records(queue: &MemoryQueue) {
    let (now, most) = queue.held();
    errln!("runyard: debug: at most {most} job records in the queue at once, {now} at the end");
}

/// Jobs submitted in memory at a time.
const BATCH: usize = 10_000;

/// Submits the jobs, parents first. A state file gets the whole run in
/// one transaction: a crash records all of it or none. In memory, batches
/// let work start sooner; with a `backlog`, each batch waits until the
/// run has room for it. Jobs with dependencies go in one batch: a job
/// may be after any job before it, which a memory queue that forgets
/// must still hold.
fn submit(run: &Run, jobs: Jobs, in_file: bool, backlog: Option<&Backlog>) -> anyhow::Result<()> {
    let linked = jobs.list.iter().any(|p| !p.edges.is_empty());
    let chunk = if in_file || linked { usize::MAX } else { BATCH };
    let room = backlog.filter(|_| !linked);
    enqueue(&jobs.list, chunk, |batch| {
        if let Some(b) = room {
            b.wait_for_room(batch.len() as u64, run);
        }
        run.submit_prepared(batch).context("enqueueing jobs")
    })
}

/// How many jobs the queue of a run in memory holds at most (not ended,
/// or not yet read by the report's thread), unless one batch is more.
const IN_FLIGHT: u64 = 3 * BATCH as u64;

/// The submitter's wait for room in a run in memory: before each batch
/// it waits until the queue, which forgets each job once the report's
/// thread has read it, holds few enough jobs for the batch to fit in
/// [`IN_FLIGHT`], so that it holds a bounded number however many jobs
/// the run has. A job that runs long while that many after it end holds
/// the submission up until it ends (the report is written in id order).
/// An interrupt, or the end of the dispatcher (a failure), stops the
/// waiting: what is left is submitted at once, and the report lists it
/// unfinished.
pub(crate) struct Backlog {
    queue: Arc<MemoryQueue>,
    stopped: AtomicBool,
}

impl Backlog {
    fn new(queue: Arc<MemoryQueue>) -> Backlog {
        Backlog {
            queue,
            stopped: AtomicBool::new(false),
        }
    }

    /// No more waiting.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Waits until `n` more jobs fit in [`IN_FLIGHT`] (or one batch alone).
    fn wait_for_room(&self, n: u64, run: &Run) {
        let most = IN_FLIGHT.saturating_sub(n);
        // The timeout only to see an interrupt or a dispatcher that ended.
        while !self
            .queue
            .wait_held_at_most(most, Duration::from_millis(50))
        {
            if self.stopped.load(Ordering::SeqCst) || run.has_ended() {
                return;
            }
        }
    }
}

/// Summarizes the run, finishes its outputs, and says how it ended.
fn report(args: &RunArgs, ran: Ran) -> anyhow::Result<Exit> {
    let (queue, human) = (&*ran.opened.queue, ran.human);
    // An output that cannot be written does not stop the run: each is
    // reported once at the end (exit code 3).
    let (summary, mut failures) = ran.outputs.finish(&ran.ended, ran.held)?;
    if let Some(q) = ran
        .forget
        .as_ref()
        .filter(|_| std::env::var_os(DEBUG_HELD_VAR).is_some())
    {
        debug_records(q);
    }
    if !args.quiet {
        // A failure is kept in `human` (the job lines' too), told below.
        let blocked = queue.counts().map_or(0, |c| c.blocked);
        let _ = print_summary(&human, &summary, blocked);
    }
    failures.extend(human.failure());
    if let Some((path, _)) = &ran.opened.file {
        if summary.unfinished > 0 {
            errln!(
                "runyard: {} unfinished jobs are recorded in {}; resume with `runyard run --state {} --resume`",
                summary.unfinished,
                path.display(),
                path.display()
            );
        }
    }
    if let Some(e) = ran.stopped {
        return Err(anyhow::Error::new(e).context("the run stopped early"));
    }
    check_outputs(failures)?;
    Ok(Exit::of_run(
        summary.interrupted || ran.interrupts.any(),
        summary.all_succeeded(),
    ))
}

/// The names of the flags that were given.
fn given<const N: usize>(flags: [(bool, &'static str); N]) -> Vec<&'static str> {
    flags
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
}

/// Worker-process flags do something only for jobs that run in worker
/// processes: given for a run with none, they are refused (the user meant
/// something that would not happen); for a run where only some jobs do, a
/// note says which.
fn check_process_flags(
    flags: &ProcessFlags,
    prepared: &[Prepared],
    engine: &Engine,
    quiet: bool,
) -> anyhow::Result<()> {
    let given = given([
        (flags.max_jobs_per_worker.is_some(), "--max-jobs-per-worker"),
        (flags.max_worker_rss.is_some(), "--max-worker-rss"),
        (flags.worker_memory_limit.is_some(), "--worker-memory-limit"),
    ]);
    if given.is_empty() {
        return Ok(());
    }
    let (mut isolated, mut others) = (0u64, 0u64);
    for p in prepared {
        if engine.runs_in_child_processes(&p.job) {
            isolated += u64::from(p.count);
        } else {
            others += u64::from(p.count);
        }
    }
    let names = given.join(", ");
    let (it, applies) = match given.len() {
        1 => ("it", "applies"),
        _ => ("they", "apply"),
    };
    if isolated == 0 {
        return Err(UsageError(format!(
            "{names}: {it} {applies} to worker processes only, and no job of this run runs in \
             one (use --mode process, or isolate = true on the jobs that need it)"
        ))
        .into());
    }
    if others > 0 && !quiet {
        errln!(
            "runyard: note: {names} {applies} only to the jobs that run in worker processes: \
             {isolated} of the {}",
            isolated + others
        );
    }
    Ok(())
}

/// A resume runs what the state file holds, as it was recorded.
fn check_resume(args: &RunArgs, url: &QueueUrl) -> anyhow::Result<()> {
    if *url == QueueUrl::Memory {
        return Err(UsageError(
            "--resume needs a state file (--state PATH or --queue sqlite://PATH); a run in memory ends with its process"
                .into(),
        )
        .into());
    }
    if !args.input.jobs.is_empty() || !args.input.files.is_empty() {
        return Err(UsageError(
            "--resume runs the jobs recorded in the state file; give no jobs or job files with it (start a new run for new jobs)"
                .into(),
        )
        .into());
    }
    let f = &args.flags;
    let given = given([
        (f.mode.is_some(), "--mode"),
        (f.max_attempts.is_some(), "--max-attempts"),
        (f.backoff.is_some(), "--backoff"),
        (f.timeout.is_some(), "--timeout"),
    ]);
    if !given.is_empty() {
        return Err(UsageError(format!(
            "{} cannot be changed on --resume: each job keeps the options it was recorded with",
            given.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// Every task the recorded run names must be one this binary can run.
fn check_tasks(queue: &dyn Queue, engine: &Engine) -> anyhow::Result<()> {
    for (task, counts) in queue.inspect()?.counts_by_task()? {
        if counts.unfinished() > 0 {
            if let Err(e) = engine.registry().lookup(&task) {
                return Err(UsageError(format!(
                    "the recorded run has {} unfinished jobs of a task this binary cannot run: {e}",
                    counts.unfinished()
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Gives every dead and cancelled job a fresh set of attempts: those
/// cancelled by the end of a job they were after come back `blocked` with
/// the retry of that job.
fn retry_dead(queue: &dyn Queue) -> anyhow::Result<()> {
    for state in [JobState::Dead, JobState::Cancelled] {
        let ids: Vec<_> = queue
            .inspect()?
            .list(&ListFilter {
                state: Some(state),
                ..ListFilter::default()
            })?
            .into_iter()
            .filter(|v| v.cancelled_by.is_none())
            .map(|v| v.id)
            .collect();
        for id in ids {
            queue.admin()?.retry(id)?;
        }
    }
    Ok(())
}
