//! `runyard exec`: a parallel command runner (like `xargs -P` or GNU
//! parallel) with retries, timeouts, a job log and a report.
//!
//! The command line and its inputs make one job of the `shell` task per
//! combination of inputs ([`inputs`], [`template`]); each command's output
//! is spooled to unlinked files ([`spool`]) and printed whole when its job
//! ends ([`printer`]); `--joblog` writes GNU parallel's job log
//! ([`joblog`]).
//!
//! Like every command that runs jobs, in three steps: [`plan`] (the
//! command, its inputs, every job and every output path checked; nothing
//! opened or written), [`execute`] (the outputs created, the run started
//! with the printer, the interrupt handler and the progress bar, and
//! waited for), [`report`] (the summary and the exit code).

mod inputs;
mod joblog;
mod printer;
mod spool;
mod template;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Args;
use runyard::duration::format_duration;
use runyard::event::EventSink;
use runyard::queue::QueueError;
use runyard::queue::{MemoryQueue, Queue};
use runyard::{Engine, EngineConfig, JobId, JobSpec, Mode, Registry, ReportReader, TaskDef};
use serde_json::json;

use self::inputs::{CommandLine, Inputs};
use self::joblog::Joblog;
use self::printer::{print_outputs, Halt, Meta, Printed, Printer, Printing, Window};
use self::spool::{Spooled, Spools};
use self::template::Template;
use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::flags::{parse_at_least_one, parse_positive_duration, Color, JobFlags};
use crate::interrupt::{on_interrupts, Interrupts};
use crate::output::human::{print_summary, Human};
use crate::output::progress::ProgressView;
use crate::output::report::{
    check_outputs, io_message, is_stdout, split_end, OutputPaths, RunOutputs,
};

pub(crate) const EXEC_HELP: &str = "\
INPUTS (as GNU parallel takes them)
  one per line on standard input (the default), or from files with -a FILE
  (`-` is standard input) or after `::::`, or words after `:::`:
    runyard exec -j4 gzip -k {} ::: a.log b.log
  Several sources make a job of every combination, the first varying slowest:
    runyard exec echo {1} {2} ::: a b ::: 1 2     (a 1, a 2, b 1, b 2)
  `:::+` (or `::::+`) links a source to the one before instead:
    runyard exec echo {1} {2} ::: a b :::+ 1 2    (a 1, b 2)

PLACEHOLDERS (also inside a word, e.g. out/{/.}.gz)
  {}    the inputs             {.}   the input without its extension
  {/}   the basename           {//}  the directory name
  {/.}  basename, no extension {#}   the job number, from 1
  {1} {2} ...  one input by source, also {1.} {1/} {1//} {1/.}
  With no placeholder, the inputs are appended as the last arguments. Other
  text passes through as it does in parallel (`${#1}`, `{a}`).

RUNS
  Each command runs once, as with xargs and parallel: --max-attempts N
  retries a failing one (up to N attempts in all). A timed-out command is
  killed with its whole process group.

OUTPUT
  Standard output carries only the commands' output, each job's printed whole
  when it ends (in input order with --keep-order); runyard's own messages and
  the summary go to standard error. If standard output is closed (`| head`),
  no more jobs start and the running ones are cancelled (exit 141).

EXIT CODES
  0 every job succeeded, 1 a job ended dead or cancelled, 2 bad input
  (nothing ran), 3 an output could not be written, 130 interrupted,
  141 standard output was closed.";

#[derive(Debug, Args)]
#[command(after_long_help = EXEC_HELP)]
pub(crate) struct ExecArgs {
    /// Jobs running at once (default: the cores).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_at_least_one)]
    jobs: Option<u64>,

    /// Read inputs from FILE, one per line (`-`: standard input); repeat it
    /// for several input sources.
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_file: Vec<PathBuf>,

    /// Inputs are separated by NUL, not newline (for `find -print0`).
    #[arg(short = '0', long = "null")]
    null: bool,

    /// Print each job's output in input order (not as jobs end).
    #[arg(short = 'k', long)]
    keep_order: bool,

    /// Start each line of a job's output with its inputs and a tab.
    #[arg(long)]
    tag: bool,

    /// Print the command of every job, run nothing.
    #[arg(long)]
    dry_run: bool,

    /// Run the command line through `sh -c`, inputs shell-quoted.
    #[arg(long)]
    shell: bool,

    /// On the first job that ends dead: `soon` starts no more jobs and lets
    /// running ones finish; `now` also cancels the running ones.
    #[arg(long, value_enum)]
    halt: Option<Halt>,

    /// Write a line per job to FILE, as GNU parallel's --joblog does
    /// (tab-separated: Seq, Host, Starttime, JobRuntime, Send, Receive,
    /// Exitval, Signal, Command, then runyard's Attempts).
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    #[command(flatten)]
    flags: JobFlags,

    /// Start at most RATE commands per window: COUNT/s, COUNT/m or COUNT/h (e.g. 10/s),
    /// held by this run (exec keeps its jobs in memory).
    #[arg(long, value_name = "RATE", value_parser = crate::flags::parse_rate)]
    rate: Option<runyard_core::Rate>,

    /// Write the full report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write every job state transition as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// After Ctrl-C, how long running commands may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    grace: Duration,

    /// The command and its arguments, then optionally input sources
    /// (`::: INPUT...`, `:::: FILE...`, `:::+`, `::::+`).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Everything checked before anything runs: the command, each job's
/// inputs, and the flags that cannot go together.
fn check_flags(args: &ExecArgs) -> Result<(), UsageError> {
    if args.flags.mode == Some(Mode::Process) {
        return Err(UsageError(
            "--mode process does not apply to exec: each command already runs as a process \
             of its own, in its own process group (which a timeout kills); leave --mode out, \
             or use --mode thread or --mode async"
                .into(),
        ));
    }
    let files = [
        ("--json", &args.json),
        ("--events", &args.events),
        ("--joblog", &args.joblog),
    ];
    if let Some((flag, _)) = files
        .iter()
        .find(|(_, p)| p.as_deref().is_some_and(is_stdout))
    {
        return Err(UsageError(format!(
            "{flag} -: standard output carries the commands' output; give {flag} a file"
        )));
    }
    if args.dry_run {
        if let Some((flag, _)) = files.iter().find(|(_, p)| p.is_some()) {
            return Err(UsageError(format!(
                "--dry-run runs nothing, so {flag} would have nothing to record"
            )));
        }
    }
    Ok(())
}

/// What `exec` runs, checked, with nothing opened yet but its input.
struct Plan {
    engine: Engine,
    commands: Commands,
    flags: runyard::JobOptions,
    rate: Option<runyard_core::Rate>,
    spools: Arc<Spools>,
    outputs: OutputPaths,
    concurrency: usize,
}

/// A run that has ended, for [`report`].
struct Ran {
    memory: Arc<MemoryQueue>,
    outputs: RunOutputs,
    ended: ReportReader,
    /// The queue failure that stopped the run early, if any.
    stopped: Option<QueueError>,
    printed: Printed,
    submitted: Result<(), RunnerFailure>,
    interrupts: Interrupts,
}

pub(crate) fn main(args: ExecArgs, color: Color) -> anyhow::Result<Exit> {
    if args.dry_run {
        return dry_run(commands(&args)?, args.tag);
    }
    let plan = plan(&args)?;
    let ran = execute(&args, plan)?;
    report(ran, color)
}

/// The jobs' commands, made from the inputs as they are read: one job of
/// the `shell` task per combination of inputs, with what the printer
/// shows of it.
struct Commands {
    template: Template,
    inputs: Inputs,
    shell: bool,
    seq: u64,
}

impl Iterator for Commands {
    type Item = Result<(serde_json::Value, Meta), UsageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let job_args = match self.inputs.next()? {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        self.seq += 1;
        let seq = self.seq;
        let (cmd, command) = if self.shell {
            let line = self.template.line(&job_args, seq);
            (json!(line), line)
        } else {
            let command = self.template.shown(&job_args, seq);
            (json!(self.template.argv(&job_args, seq)), command)
        };
        Some(Ok((
            json!({"cmd": cmd, "shell": self.shell}),
            Meta {
                input: job_args.join(" "),
                command,
            },
        )))
    }
}

/// Checks the command and opens its inputs (see [`inputs`]).
fn commands(args: &ExecArgs) -> anyhow::Result<Commands> {
    let line = CommandLine::split(&args.command);
    if line.command.is_empty() {
        return Err(UsageError(
            "no command given: runyard exec [OPTIONS] -- COMMAND [ARGS...]".into(),
        )
        .into());
    }
    check_flags(args)?;
    let template = Template::parse(line.command).map_err(UsageError)?;
    let inputs = Inputs::open(&args.arg_file, &line, args.null)?;
    Ok(Commands {
        template,
        inputs,
        shell: args.shell,
        seq: 0,
    })
}

/// Checks everything before anything runs: the command and its inputs'
/// sources, the engine's configuration and the output paths. Jobs are
/// made as the inputs are read ([`feed`]).
fn plan(args: &ExecArgs) -> anyhow::Result<Plan> {
    let commands = commands(args)?;
    let concurrency = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    let config = EngineConfig::builder()
        .mode(args.flags.mode.unwrap_or(Mode::Auto))
        .concurrency(concurrency)
        .grace(args.grace)
        // With --halt, nothing may start once a job has ended dead.
        .prefetch(args.halt.is_none())
        .build()
        .map_err(|e| UsageError(e.to_string()))?;
    let spools = Arc::new(Spools::new(spool::waiting_open()));
    let registry = Registry::builder()
        .task(TaskDef::from_task(Spooled {
            spools: Arc::clone(&spools),
        }))
        .build()?;
    let engine = Engine::new(registry, config);
    let flags = args.flags.options();
    if args.rate.is_some()
        && !MemoryQueue::new()
            .capabilities()
            .has(runyard::queue::Capability::Limits)
    {
        return Err(UsageError(
            "--rate needs a queue that keeps rate limits, and this build's in-memory queue \
             does not"
                .into(),
        )
        .into());
    }
    let outputs = OutputPaths::check(args.json.as_ref(), args.events.as_ref())?;
    if let Some(p) = &args.joblog {
        Joblog::check(p)?;
    }
    Ok(Plan {
        engine,
        commands,
        flags,
        rate: args.rate,
        spools,
        outputs,
        concurrency,
    })
}

/// How many jobs `exec` holds at most (made and not yet printed) with
/// `concurrency` running at once: the running ones, as many again waiting
/// to start, and room for the out-of-order ones of `--keep-order`.
fn read_ahead(concurrency: usize) -> u64 {
    (concurrency as u64).saturating_mul(2).saturating_add(128)
}

/// The environment variable that makes `exec` say, at its end on
/// standard error, how many jobs it held at once (for tests).
pub(crate) const DEBUG_HELD_VAR: &str = "RUNYARD_EXEC_DEBUG_HELD";

/// Makes jobs from the inputs as the window has room and submits them,
/// until the inputs end or the run stops. Jobs are submitted in batches of
/// what can be read without waiting for the input, so a slow input's jobs
/// start as each arrives.
fn feed(
    run: &runyard::Run,
    memory: &MemoryQueue,
    engine: &Engine,
    mut commands: Commands,
    flags: &runyard::JobOptions,
    rate: Option<runyard_core::Rate>,
    window: &Window,
) -> Result<(), RunnerFailure> {
    let mut made = 0u64;
    while let Some(room) = window.wait_for_room() {
        let mut jobs = Vec::new();
        let mut metas = Vec::new();
        while (jobs.len() as u64) < room && (jobs.is_empty() || commands.inputs.ready()) {
            let Some(next) = commands.next() else { break };
            let (params, meta) = next.map_err(|e| RunnerFailure(e.0))?;
            let spec = JobSpec::new("shell")
                .params(&params)
                .map_err(|e| RunnerFailure(format!("input {} (`{}`): {e}", made + 1, meta.input)))?
                .with_options(flags.clone());
            let mut job = engine.prepare(&spec).map_err(|e| {
                RunnerFailure(format!("input {} (`{}`): {e}", made + 1, meta.input))
            })?;
            job.limits.task_rate = rate;
            made += 1;
            jobs.push(job);
            metas.push((made, meta));
        }
        if jobs.is_empty() {
            return Ok(());
        }
        // The queue forgets a job once the printer and the report's thread
        // have read it: it holds at most twice the window, whichever reads
        // later.
        let most = (2 * window.limit()).saturating_sub(jobs.len() as u64);
        while !memory.wait_held_at_most(most, Duration::from_millis(50)) {
            if window.stopped() || run.has_ended() {
                break;
            }
        }
        // Held before they are enqueued: a job may end before the submit returns.
        for (id, meta) in metas {
            window.add(id, meta);
        }
        let enqueued = run
            .submit_prepared(jobs)
            .map_err(|e| RunnerFailure(format!("enqueueing the jobs: {e}")))?;
        debug_assert!(enqueued.last().is_none_or(|e| e.id().0 == made));
    }
    Ok(())
}

/// Creates the outputs, runs the jobs with the printer as the inputs are
/// read, and waits for the run and the printer.
fn execute(args: &ExecArgs, plan: Plan) -> anyhow::Result<Ran> {
    let Plan {
        engine,
        commands,
        flags,
        rate,
        spools,
        outputs,
        concurrency,
    } = plan;
    let mut outputs = outputs.open()?;
    let joblog = args.joblog.as_deref().map(Joblog::create).transpose()?;

    // Forgets each job once the printer and the report's thread read it.
    let memory = Arc::new(MemoryQueue::new().forgetting(2));
    let queue: Arc<dyn Queue> = Arc::clone(&memory) as Arc<dyn Queue>;
    let window = Arc::new(Window::new(read_ahead(concurrency)));
    let (tx, rx) = channel::<JobId>();
    let printer = Arc::new(Printer {
        tx: Mutex::new(tx),
        halt: args.halt,
        halted: AtomicBool::new(false),
        interrupt: OnceLock::new(),
        window: Arc::clone(&window),
    });
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![printer.clone()];
    sinks.extend(outputs.events_sink());
    // Last: a job is read (and forgotten) once every other sink saw it end.
    sinks.extend(outputs.report_sink(Arc::clone(&queue), Some(Arc::clone(&memory))));
    let run = engine.start_with_sinks(Arc::clone(&queue), sinks)?;
    let _ = printer.interrupt.set(Box::new(run.interrupter()));
    let interrupts = {
        let (interrupt, window) = (run.interrupter(), Arc::clone(&window));
        on_interrupts(
            move || {
                window.stop();
                interrupt();
            },
            "runyard",
            format!(
                "interrupted: starting no more commands; running ones may finish (up to {}); \
                 interrupt again to cancel them",
                format_duration(args.grace)
            ),
            false,
        )
    };

    let printing = start_printer(
        args,
        rx,
        Arc::clone(&memory),
        spools,
        Arc::clone(&window),
        joblog,
        Box::new(run.interrupter()),
    );
    let progress = std::io::stderr().is_terminal().then(|| {
        let source = run.progress_source();
        let queue = Arc::clone(&queue);
        // The total grows as the inputs are read.
        ProgressView::start(
            0,
            move || source().ok(),
            move || crate::commands::flow::held_now(&*queue),
        )
    });
    let submitted = feed(&run, &memory, &engine, commands, &flags, rate, &window);
    run.close();
    let ended = run.join();
    if let Some(p) = progress {
        p.finish();
    }
    drop(printer);
    let printed = printing.join().expect("the printer does not panic");
    if std::env::var_os(DEBUG_HELD_VAR).is_some() {
        errln!(
            "runyard: debug: at most {} jobs held at once (limit {})",
            window.most_held(),
            window.limit()
        );
    }
    let (ended, stopped) = split_end(ended)?;
    Ok(Ran {
        memory,
        outputs,
        ended,
        stopped,
        printed,
        submitted,
        interrupts,
    })
}

/// Starts the thread that prints each job's output as it ends (see
/// [`printer`]); `stop` is the run's interrupter.
fn start_printer(
    args: &ExecArgs,
    rx: Receiver<JobId>,
    queue: Arc<MemoryQueue>,
    spools: Arc<Spools>,
    window: Arc<Window>,
    joblog: Option<Joblog>,
    stop: Box<dyn Fn() + Send + Sync>,
) -> JoinHandle<Printed> {
    let (keep_order, tag) = (args.keep_order, args.tag);
    std::thread::spawn(move || {
        print_outputs(
            rx,
            Printing {
                queue: &*queue,
                forget: Some(&*queue),
                spools: &spools,
                window: &window,
                keep_order,
                tag,
                joblog,
                // Twice: the first drains, the second cancels.
                stop: Box::new(move || {
                    stop();
                    stop();
                }),
            },
        )
    })
}

/// Summarizes the run on standard error, finishes its outputs, and says
/// how it ended.
fn report(ran: Ran, color: Color) -> anyhow::Result<Exit> {
    let printed = ran.printed;
    ran.submitted?;
    let (summary, failed) = ran.outputs.finish(&ran.ended, Vec::new())?;
    if std::env::var_os(DEBUG_HELD_VAR).is_some() {
        crate::commands::run::debug_records(&ran.memory);
    }
    let mut failures = printed.failures;
    failures.extend(failed);
    let human = Human::new(true, color);
    for line in &printed.dead {
        human.line(line)?;
    }
    print_summary(&human, &summary, 0)?;
    if let Some(e) = ran.stopped {
        failures.push(RunnerFailure(format!("the run stopped early: {e}")));
    }
    ended(
        failures,
        printed.stdout_closed,
        ran.interrupts.any(),
        summary.all_succeeded(),
    )
}

/// The exit code, most telling first: standard output closed (141), an
/// output that failed (3, each failure said once), interrupted (130), a job
/// not succeeded (1).
fn ended(
    failures: Vec<RunnerFailure>,
    stdout_closed: bool,
    interrupted: bool,
    all_succeeded: bool,
) -> anyhow::Result<Exit> {
    if stdout_closed {
        let mut stderr = io::stderr();
        for f in &failures {
            // Standard error may be gone too; the exit code still says it.
            let _ = writeln!(stderr, "error: {f}");
        }
        return Ok(Exit::StdoutClosed);
    }
    check_outputs(failures)?;
    Ok(Exit::of_run(interrupted, all_succeeded))
}

/// `--dry-run`: every job's command, in order, nothing run.
fn dry_run(commands: Commands, tag: bool) -> anyhow::Result<Exit> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut written = Ok(());
    for next in commands {
        let (_, m) = next?;
        written = (|| {
            if tag {
                write!(out, "{}\t", m.input)?;
            }
            writeln!(out, "{}", m.command)
        })();
        if written.is_err() {
            break;
        }
    }
    let written = written.and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(Exit::Success),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::StdoutClosed),
        Err(e) => Err(RunnerFailure(format!("standard output: {}", io_message(&e))).into()),
    }
}
