//! `runyard run`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context as _;
use runyard::event::EventSink;
use runyard::exec::{lane_for, Lane};
use runyard::queue::{ListFilter, Queue};
use runyard::JobState;
use runyard::{Engine, EngineConfig, Mode, Registry, Report};

use crate::args::{Color, ProcessFlags, RunArgs};
use crate::jobs::{is_stdout, Prepared};
use crate::output::{check_outputs, print_summary, Human, JobLines, ProgressView, RunOutputs};
use crate::state::{self, Purpose, QueueUrl};
use crate::UsageError;

pub(crate) fn run(
    args: RunArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<ExitCode> {
    let json_stdout = args.json.as_deref().is_some_and(is_stdout);
    let events_stdout = args.events.as_deref().is_some_and(is_stdout);
    if json_stdout && events_stdout {
        return Err(UsageError(
            "--json - and --events - cannot both write to standard output; give one of them a file"
                .into(),
        )
        .into());
    }
    let stdout_taken = json_stdout || events_stdout;
    let human = Human::new(stdout_taken, color);
    let flags = args.flags.options();
    let config = EngineConfig {
        mode: args.flags.mode.unwrap_or(Mode::Auto),
        concurrency: args.concurrency.map(|j| j as usize),
        grace: args.grace,
        process: crate::process_config(&args.process, None),
        ..EngineConfig::default()
    };
    config.check().map_err(|e| UsageError(e.to_string()))?;
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
        check_resume(&args, &url)?;
    }

    // Everything is checked before anything runs (or a state file is made).
    let prepared = args.input.prepare(&engine, &flags)?;
    if prepared.is_empty() && !args.resume {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard run cpu sleep`) or give a job file with -f; `runyard list` shows the tasks"
                .into(),
        )
        .into());
    }
    if !args.resume {
        check_process_flags(&args.process, &prepared, &engine, args.quiet)?;
    }
    let purpose = if args.resume {
        Purpose::Resume
    } else {
        Purpose::NewRun
    };
    let opened = state::open(&url, purpose)?;
    let queue = Arc::clone(&opened.queue);
    if args.resume {
        check_tasks(&*queue, &engine)?;
        if args.retry_dead {
            retry_dead(&*queue)?;
        }
    }
    let outputs = RunOutputs::open(args.json.as_ref(), args.events.as_ref())?;

    let mut sinks: Vec<Arc<dyn EventSink>> = outputs.events_sink().into_iter().collect();
    if !args.quiet && !human.is_terminal {
        sinks.push(Arc::new(JobLines {
            human: human.clone(),
        }));
    }
    let run = engine.start(Arc::clone(&queue), sinks);

    let grace = runyard::duration::format_duration(args.grace);
    let presses = crate::on_interrupts(
        run.interrupter(),
        "runyard",
        format!(
            "interrupted: starting no more jobs; running attempts may finish (up to {grace}); \
             interrupt again to cancel them"
        ),
        args.quiet,
    );

    let total: u64 = prepared.iter().map(|p| u64::from(p.count)).sum::<u64>()
        + queue.counts().map_or(0, |c| c.total());
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let source = run.progress_source();
        ProgressView::start(total, move || source().ok())
    });
    // A state file gets the whole run in one transaction: a crash records
    // all of it or none. In memory, batches let work start sooner.
    let chunk = if opened.file.is_some() {
        usize::MAX
    } else {
        10_000
    };
    let mut batch = Vec::with_capacity(total.min(10_000) as usize);
    for p in prepared {
        for _ in 0..p.count {
            batch.push(p.job.clone());
            if batch.len() == chunk {
                run.submit_prepared(std::mem::take(&mut batch))
                    .context("enqueueing jobs")?;
            }
        }
    }
    if !batch.is_empty() {
        run.submit_prepared(batch).context("enqueueing jobs")?;
    }
    run.close();
    let out = run.wait();
    if let Some(p) = progress {
        p.finish();
    }

    let summary =
        Report::summarize(&*queue, out.wall, out.interrupted).context("reading the report")?;
    // An output that cannot be written does not stop the run: each is
    // reported once at the end (exit code 3).
    let failures = outputs.finish(&*queue, &summary)?;
    if !args.quiet {
        print_summary(&human, &summary);
    }
    if let Some((path, _)) = &opened.file {
        if summary.unfinished > 0 {
            errln!(
                "runyard: {} unfinished jobs are recorded in {}; resume with `runyard run --state {} --resume`",
                summary.unfinished,
                path.display(),
                path.display()
            );
        }
    }
    if let Some(e) = out.error {
        return Err(anyhow::Error::new(e).context("the run stopped early"));
    }
    check_outputs(failures)?;
    Ok(if out.interrupted || presses.load(Ordering::SeqCst) > 0 {
        ExitCode::from(130)
    } else if summary.all_succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
        let s = &p.job.settings;
        let lane = engine
            .registry()
            .lookup(&p.job.task)
            .ok()
            .and_then(|i| lane_for(s.mode, engine.registry().task(i), s.isolate).ok());
        match lane {
            Some(Lane::Process) => isolated += u64::from(p.count),
            _ => others += u64::from(p.count),
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
    for (task, counts) in queue.counts_by_task()? {
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

/// Gives every dead and cancelled job a fresh set of attempts.
fn retry_dead(queue: &dyn Queue) -> anyhow::Result<()> {
    for state in [JobState::Dead, JobState::Cancelled] {
        let ids: Vec<_> = queue
            .list(&ListFilter {
                state: Some(state),
                ..ListFilter::default()
            })?
            .into_iter()
            .map(|v| v.id)
            .collect();
        for id in ids {
            queue.retry(id)?;
        }
    }
    Ok(())
}
