//! A worker's settings from three places: its flags, the `RUNYARD_<KEY>`
//! environment variables, and the TOML file of `--config FILE`, in that
//! order of precedence (docs/worker-config.md).
//!
//! A key is a long flag's name with `_` for `-` (`max_jobs_per_worker`),
//! its variable the key in capitals after `RUNYARD_`
//! (`RUNYARD_MAX_JOBS_PER_WORKER`). Each value, wherever it comes from, is
//! read by the flag's own parser. A file with an unknown key, a value of
//! the wrong type or a value its flag refuses is an error naming the file,
//! line and column (as job files are); a variable's error names the
//! variable. All of it is checked before the worker opens anything.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::serve::parse_listen;
use super::worker_args::WorkerArgs;
use crate::exit::UsageError;
use crate::flags::{
    parse_at_least_one, parse_lease, parse_mode, parse_positive_duration, parse_size,
};
use crate::jobs::{InputError, Source};
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

/// A value from the file, as its flag would read it, and where it is.
struct FileValue {
    text: String,
    span: std::ops::Range<usize>,
}

fn at<T>(v: &Spanned<T>, text: String) -> FileValue {
    FileValue {
        text,
        span: v.span(),
    }
}

/// Where the file is and what it says.
struct Loaded<'a> {
    src: Source<'a>,
    file: File,
}

/// Fills each setting the flags left unset from its environment variable,
/// else from the file of `--config`; every value checked.
pub(crate) fn merge(mut args: WorkerArgs) -> anyhow::Result<WorkerArgs> {
    let text;
    let path: PathBuf;
    let loaded = match args.config.clone() {
        Some(p) => {
            path = p;
            text = std::fs::read_to_string(&path).map_err(|e| {
                UsageError(format!("--config {}: cannot read it: {e}", path.display()))
            })?;
            let src = Source {
                path: &path,
                text: &text,
            };
            let file: File = toml::from_str(&text)
                .map_err(|e| discreet(src.error(e.span(), e.message().trim_end())))?;
            Some(Loaded { src, file })
        }
        None => None,
    };
    let empty = File::default();
    let f = loaded.as_ref().map_or(&empty, |l| &l.file);
    let m = Merger {
        src: loaded.as_ref().map(|l| &l.src),
    };
    let s = |v: &Option<Spanned<String>>| v.as_ref().map(|v| at(v, v.get_ref().clone()));
    let n = |v: &Option<Spanned<u64>>| v.as_ref().map(|v| at(v, v.get_ref().to_string()));
    let b = |v: &Option<Spanned<bool>>| v.as_ref().map(|v| at(v, v.get_ref().to_string()));
    let size = |v: &Option<Spanned<Size>>| {
        v.as_ref().map(|v| {
            at(
                v,
                match v.get_ref() {
                    Size::Bytes(n) => n.to_string(),
                    Size::Text(t) => t.clone(),
                },
            )
        })
    };
    let tasks = f.tasks.as_ref().map(|v| {
        at(
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
    m.fill(
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

/// `e`, without its line when that may show a secret: a misspelled key's
/// value (a token under `tokn`, say) or a URL with credentials.
fn discreet(e: InputError) -> InputError {
    let url_with_user = e
        .line()
        .and_then(|l| l.split_once("://"))
        .is_some_and(|(_, rest)| rest.contains('@'));
    if url_with_user || e.message().starts_with("unknown field") {
        e.without_line()
    } else {
        e
    }
}

fn nonempty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

fn path_of(s: &str) -> Result<PathBuf, String> {
    nonempty(s).map(PathBuf::from)
}

/// Reads a boolean variable: `true`, `false`, `1` or `0`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("`{s}` is not true, false, 1 or 0")),
    }
}

/// The variable of `key`.
pub(crate) fn env_name(key: &str) -> String {
    format!("RUNYARD_{}", key.to_ascii_uppercase())
}

struct Merger<'a> {
    src: Option<&'a Source<'a>>,
}

impl Merger<'_> {
    /// `slot`, unless a flag set it: from the variable of `key` (when
    /// `reads_env`; otherwise the flag reads it), else from the file.
    fn fill<T>(
        &self,
        slot: &mut Option<T>,
        key: &str,
        reads_env: bool,
        file: Option<FileValue>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<()> {
        if slot.is_some() {
            return Ok(());
        }
        if reads_env {
            let var = env_name(key);
            if let Some(v) = std::env::var_os(&var) {
                let v = v
                    .into_string()
                    .map_err(|_| UsageError(format!("${var}: not UTF-8")))?;
                if !v.is_empty() {
                    *slot = Some(parse(&v).map_err(|e| UsageError(format!("${var}: {e}")))?);
                    return Ok(());
                }
            }
        }
        if let (Some(v), Some(src)) = (file, self.src) {
            *slot = Some(parse(&v.text).map_err(|e| self.at(src, &v, key, &e))?);
        }
        Ok(())
    }

    /// A switch: on if its flag is given, else as its variable or the file
    /// says.
    fn flag(&self, slot: &mut bool, key: &str, file: Option<FileValue>) -> anyhow::Result<()> {
        if *slot {
            return Ok(());
        }
        let mut v = None;
        self.fill(&mut v, key, true, file, parse_bool)?;
        *slot = v.unwrap_or(false);
        Ok(())
    }

    fn at(&self, src: &Source<'_>, v: &FileValue, key: &str, e: &str) -> InputError {
        discreet(src.error(Some(v.span.clone()), format!("`{key}`: {e}")))
    }
}
