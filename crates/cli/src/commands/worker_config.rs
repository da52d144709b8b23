//! A worker's settings from three places: its flags, the `RUNYARD_<KEY>`
//! environment variables, and the TOML file of `--config FILE`, in that
//! order of precedence (docs/worker-config.md), merged by `settings.rs`.
//!
//! A key is a long flag's name with `_` for `-` (`max_jobs_per_worker`),
//! its variable the key in capitals after `RUNYARD_`
//! (`RUNYARD_MAX_JOBS_PER_WORKER`). All of it is checked before the worker
//! opens anything.

use serde::Deserialize;
use toml::Spanned;

use super::serve_args::parse_listen;
use super::settings::{self, nonempty, path_of, FileValue, Merger};
use super::worker_args::WorkerArgs;
use crate::exit::UsageError;
use crate::flags::{
    parse_at_least_one, parse_lease, parse_mode, parse_positive_duration, parse_size,
};
use crate::queues::parse_queue_url;

/// The keys a file may hold, each with the TOML type it takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queue: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    jobs: Option<Spanned<u64>>,
    /// A list of names, or one comma-separated string as the flag takes.
    tasks: Option<Spanned<Tasks>>,
    name: Option<Spanned<String>>,
    lease: Option<Spanned<String>>,
    grace: Option<Spanned<String>>,
    max_jobs_per_worker: Option<Spanned<u64>>,
    max_worker_rss: Option<Spanned<Size>>,
    worker_memory_limit: Option<Spanned<Size>>,
    events: Option<Spanned<String>>,
    no_schedules: Option<Spanned<bool>>,
    quiet: Option<Spanned<bool>>,
    listen: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "invalid type: expected a list of task names, or one comma-separated string"
)]
enum Tasks {
    List(Vec<String>),
    Joined(String),
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "invalid type: expected a size: bytes, or a string such as \"512M\" or \"2G\""
)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// Fills each setting the flags left unset from its environment variable,
/// else from the file of `--config`; every value checked.
pub(crate) fn merge(mut args: WorkerArgs) -> anyhow::Result<WorkerArgs> {
    let loaded = settings::read::<File>(args.config.as_deref())?;
    let empty = File::default();
    let (cfg, f) = match &loaded {
        Some((cfg, f)) => (Some(cfg), f),
        None => (None, &empty),
    };
    let m = Merger::new("RUNYARD_", cfg);
    let s = settings::text;
    let n = settings::shown::<u64>;
    let b = settings::shown::<bool>;
    let size = |v: &Option<Spanned<Size>>| {
        v.as_ref().map(|v| {
            FileValue::at(
                v,
                match v.get_ref() {
                    Size::Bytes(n) => n.to_string(),
                    Size::Text(t) => t.clone(),
                },
            )
        })
    };
    let tasks = f.tasks.as_ref().map(|v| {
        FileValue::at(
            v,
            match v.get_ref() {
                Tasks::List(l) => l.join(","),
                Tasks::Joined(t) => t.clone(),
            },
        )
    });

    // The queue's variable is read by the flag itself (`RUNYARD_QUEUE`).
    m.fill(
        &mut args.queue,
        "queue",
        false,
        s(&f.queue),
        parse_queue_url,
    )?;
    m.fill(&mut args.mode, "mode", true, s(&f.mode), parse_mode)?;
    m.fill(
        &mut args.concurrency,
        "jobs",
        true,
        n(&f.jobs),
        parse_at_least_one,
    )?;
    m.fill(&mut args.tasks, "tasks", true, tasks, |t| Ok(t.to_string()))?;
    m.fill(&mut args.name, "name", true, s(&f.name), nonempty)?;
    m.fill(&mut args.lease, "lease", true, s(&f.lease), parse_lease)?;
    m.fill(
        &mut args.grace,
        "grace",
        true,
        s(&f.grace),
        parse_positive_duration,
    )?;
    let p = &mut args.process;
    m.fill(
        &mut p.max_jobs_per_worker,
        "max_jobs_per_worker",
        true,
        n(&f.max_jobs_per_worker),
        parse_at_least_one,
    )?;
    m.fill(
        &mut p.max_worker_rss,
        "max_worker_rss",
        true,
        size(&f.max_worker_rss),
        parse_size,
    )?;
    m.fill(
        &mut p.worker_memory_limit,
        "worker_memory_limit",
        true,
        size(&f.worker_memory_limit),
        parse_size,
    )?;
    m.fill(&mut args.events, "events", true, s(&f.events), path_of)?;
    m.fill(&mut args.listen, "listen", true, s(&f.listen), parse_listen)?;
    args.token_from = m.fill(
        &mut args.token_file,
        "token_file",
        true,
        s(&f.token_file),
        path_of,
    )?;
    m.flag(&mut args.no_schedules, "no_schedules", b(&f.no_schedules))?;
    m.flag(&mut args.quiet, "quiet", b(&f.quiet))?;
    if args.queue.is_none() {
        return Err(UsageError(
            "a queue is needed: give --queue URL, $RUNYARD_QUEUE, or `queue = \"URL\"` in the \
             --config file"
                .into(),
        )
        .into());
    }
    Ok(args)
}
