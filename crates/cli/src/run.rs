//! `runyard run`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use runyard::queue::{MemoryQueue, Queue};
use runyard::{
    write_report_json, Engine, EngineConfig, EventSink, JobOptions, JsonLines, Mode, Registry,
    Report,
};

use crate::args::{Color, RunArgs};
use crate::jobs::{self, create_output, is_stdout, Prepared};
use crate::output::{print_summary, Human, JobLines, ProgressView};
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
    let flags = JobOptions {
        mode: args.flags.mode,
        max_attempts: args.flags.max_attempts,
        backoff: args.flags.backoff,
        timeout: args.flags.timeout,
        ..JobOptions::default()
    };
    let config = EngineConfig {
        mode: args.flags.mode.unwrap_or(Mode::Auto),
        concurrency: args.concurrency.map(|j| j as usize),
        grace: args.grace,
        process: crate::process_config(&args.process, None),
        ..EngineConfig::default()
    };
    let engine = Engine::new(registry, config);

    // Everything is checked before anything runs.
    let mut prepared: Vec<Prepared> = jobs::from_args(&engine, &args.jobs, &flags)?;
    for f in &args.files {
        prepared.extend(jobs::from_file(&engine, f, &flags)?);
    }
    if prepared.is_empty() {
        return Err(UsageError(
            "no jobs given: name tasks (e.g. `runyard run cpu sleep`) or give a job file with -f; `runyard list` shows the tasks"
                .into(),
        )
        .into());
    }
    let json_out = args
        .json
        .as_ref()
        .map(|p| create_output(p, "report"))
        .transpose()?;
    let events_out = args
        .events
        .as_ref()
        .map(|p| create_output(p, "events"))
        .transpose()?;

    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if let Some(w) = events_out {
        sinks.push(Arc::new(JsonLines::new(w)));
    }
    if !args.quiet && !human.is_terminal {
        sinks.push(Arc::new(JobLines {
            human: human.clone(),
        }));
    }
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine.start(Arc::clone(&queue), sinks);

    // Ctrl-C / SIGTERM: first drains, second cancels, third leaves at once.
    let interrupt = run.interrupter();
    let presses = Arc::new(AtomicU32::new(0));
    let p = Arc::clone(&presses);
    let grace = runyard::format_duration(args.grace);
    let quiet = args.quiet;
    let _ = ctrlc::set_handler(move || {
        let n = p.fetch_add(1, Ordering::SeqCst);
        let note = match n {
            0 => format!(
                "interrupted: starting no more jobs; running attempts may finish (up to {grace}); \
                 interrupt again to cancel them"
            ),
            1 => "cancelling running attempts; interrupt again to exit at once".to_string(),
            _ => std::process::exit(130),
        };
        if !quiet {
            eprintln!("runyard: {note}");
        }
        interrupt();
    });

    let total: u64 = prepared.iter().map(|p| u64::from(p.count)).sum();
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let source = run.progress_source();
        ProgressView::start(total, move || source().ok())
    });
    let mut batch = Vec::with_capacity(total.min(10_000) as usize);
    for p in prepared {
        for _ in 0..p.count {
            batch.push(p.job.clone());
            if batch.len() == 10_000 {
                run.submit_prepared(std::mem::take(&mut batch))
                    .context("enqueueing jobs")?;
            }
        }
    }
    run.submit_prepared(batch).context("enqueueing jobs")?;
    run.close();
    let out = run.wait();
    if let Some(p) = progress {
        p.finish();
    }

    let summary =
        Report::summarize(&*queue, out.wall, out.interrupted).context("reading the report")?;
    if let Some(w) = json_out {
        write_report_json(&*queue, &summary, w).context("writing the JSON report")?;
    }
    if !args.quiet {
        print_summary(&human, &summary);
    }
    if let Some(e) = out.error {
        return Err(anyhow::Error::new(e).context("the run stopped early"));
    }
    Ok(if out.interrupted || presses.load(Ordering::SeqCst) > 0 {
        ExitCode::from(130)
    } else if summary.all_succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
