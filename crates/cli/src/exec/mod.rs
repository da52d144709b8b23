//! `runyard exec`: a parallel command runner (like `xargs -P` or GNU
//! parallel) with retries, timeouts, a job log and a report.
//!
//! The command line and its inputs make one job of the `shell` task per
//! combination of inputs ([`inputs`], [`template`]); each command's output
//! is spooled to unlinked files ([`spool`]) and printed whole when its job
//! ends ([`printer`]); `--joblog` writes GNU parallel's job log
//! ([`joblog`]).

mod inputs;
mod joblog;
mod printer;
mod spool;
mod template;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::{Args, ValueEnum};
use runyard::duration::format_duration;
use runyard::event::EventSink;
use runyard::queue::{MemoryQueue, Queue};
use runyard::{Engine, EngineConfig, JobId, JobSpec, Mode, Registry, Report, TaskDef};
use serde_json::json;

use self::inputs::CommandLine;
use self::joblog::Joblog;
use self::printer::{print_outputs, Meta, Printer, Printing};
use self::spool::{Spooled, Spools};
use self::template::Template;
use crate::args::{Color, JobFlags};
use crate::jobs::is_stdout;
use crate::output::{check_outputs, io_message, print_summary, Human, ProgressView, RunOutputs};
use crate::{RunnerFailure, UsageError};

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
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = crate::args::parse_at_least_one)]
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

    /// Write the full report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write every job state transition as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// After Ctrl-C, how long running commands may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::args::parse_positive_duration)]
    grace: Duration,

    /// The command and its arguments, then optionally input sources
    /// (`::: INPUT...`, `:::: FILE...`, `:::+`, `::::+`).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Halt {
    Soon,
    Now,
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

pub(crate) fn exec(args: ExecArgs, color: Color) -> anyhow::Result<ExitCode> {
    let line = CommandLine::split(&args.command);
    if line.command.is_empty() {
        return Err(UsageError(
            "no command given: runyard exec [OPTIONS] -- COMMAND [ARGS...]".into(),
        )
        .into());
    }
    check_flags(&args)?;
    let template = Template::parse(line.command).map_err(UsageError)?;
    let inputs = inputs::combine(inputs::read(&args.arg_file, &line, args.null)?)?;

    // A job per combination of inputs: its `shell` parameters, and what the
    // printer shows of it.
    let mut metas = Vec::with_capacity(inputs.len());
    let mut params = Vec::with_capacity(inputs.len());
    for (i, job_args) in inputs.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let (cmd, command) = if args.shell {
            let line = template.line(&job_args, seq);
            (json!(line), line)
        } else {
            let command = template.shown(&job_args, seq);
            (json!(template.argv(&job_args, seq)), command)
        };
        params.push(json!({"cmd": cmd, "shell": args.shell}));
        metas.push(Meta {
            input: job_args.join(" "),
            command,
        });
    }
    if args.dry_run {
        return dry_run(&metas, args.tag);
    }

    let spools = Arc::new(Spools::new(spool::waiting_open()));
    let registry = Registry::builder()
        .task(TaskDef::from_task(Spooled {
            spools: Arc::clone(&spools),
        }))
        .build()?;
    let engine = Engine::new(
        registry,
        EngineConfig {
            mode: args.flags.mode.unwrap_or(Mode::Auto),
            concurrency: Some(args.jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |j| j as usize,
            )),
            grace: args.grace,
            // With --halt, nothing may start once a job has ended dead.
            prefetch: args.halt.is_none(),
            ..EngineConfig::default()
        },
    );
    let flags = args.flags.options();
    let mut jobs = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let spec = JobSpec::new("shell").params(p)?.with_options(flags.clone());
        jobs.push(
            engine
                .prepare(&spec)
                .map_err(|e| UsageError(format!("input {} (`{}`): {e}", i + 1, metas[i].input)))?,
        );
    }
    drop(params);

    let outputs = RunOutputs::open(args.json.as_ref(), args.events.as_ref())?;
    let joblog = args.joblog.as_deref().map(Joblog::create).transpose()?;

    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let (tx, rx) = channel::<JobId>();
    let printer = Arc::new(Printer {
        tx: Mutex::new(tx),
        halt: args.halt,
        halted: AtomicBool::new(false),
        interrupt: OnceLock::new(),
    });
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![printer.clone()];
    sinks.extend(outputs.events_sink());
    let run = engine.start(Arc::clone(&queue), sinks);
    let _ = printer.interrupt.set(Box::new(run.interrupter()));
    let presses = crate::on_interrupts(
        run.interrupter(),
        "runyard",
        format!(
            "interrupted: starting no more commands; running ones may finish (up to {}); \
             interrupt again to cancel them",
            format_duration(args.grace)
        ),
        false,
    );

    let total = jobs.len() as u64;
    let printing = {
        let (queue, spools) = (Arc::clone(&queue), Arc::clone(&spools));
        let stop = run.interrupter();
        let (keep_order, tag) = (args.keep_order, args.tag);
        std::thread::spawn(move || {
            print_outputs(
                rx,
                Printing {
                    queue: &*queue,
                    spools: &spools,
                    metas: &metas,
                    keep_order,
                    tag,
                    joblog,
                    stop: Box::new(move || {
                        stop();
                        stop();
                    }),
                },
            )
        })
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let source = run.progress_source();
        ProgressView::start(total, move || source().ok())
    });
    let submitted = run.submit_prepared(jobs);
    run.close();
    let out = run.wait();
    if let Some(p) = progress {
        p.finish();
    }
    drop(printer);
    let printed = printing.join().expect("the printer does not panic");
    if let Err(e) = submitted {
        return Err(RunnerFailure(format!("enqueueing the jobs: {e}")).into());
    }

    let summary = Report::summarize(&*queue, out.wall, out.interrupted)
        .map_err(|e| RunnerFailure(format!("reading the report: {e}")))?;
    let mut failures = printed.failures;
    failures.extend(outputs.finish(&*queue, &summary)?);
    let human = Human::new(true, color);
    for line in &printed.dead {
        human.line(line);
    }
    print_summary(&human, &summary);
    if let Some(e) = out.error {
        failures.push(RunnerFailure(format!("the run stopped early: {e}")));
    }
    ended(
        failures,
        printed.stdout_closed,
        presses.load(Ordering::SeqCst) > 0,
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
) -> anyhow::Result<ExitCode> {
    if stdout_closed {
        let mut stderr = io::stderr();
        for f in &failures {
            // Standard error may be gone too; the exit code still says it.
            let _ = writeln!(stderr, "error: {f}");
        }
        return Ok(ExitCode::from(141));
    }
    check_outputs(failures)?;
    Ok(if interrupted {
        ExitCode::from(130)
    } else if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--dry-run`: every job's command, in order, nothing run.
fn dry_run(metas: &[Meta], tag: bool) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = metas
        .iter()
        .try_for_each(|m| {
            if tag {
                write!(out, "{}\t", m.input)?;
            }
            writeln!(out, "{}", m.command)
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::from(141)),
        Err(e) => Err(RunnerFailure(format!("standard output: {}", io_message(&e))).into()),
    }
}
