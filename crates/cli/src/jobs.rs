//! Where jobs come from: `TASK:KEY=VALUE*COUNT` arguments and TOML job files.
//!
//! Every job is checked (task, parameters, options, mode) before any runs;
//! an error names where the job came from: the argument, or the file, line
//! and column. A command names at most [`MAX_JOBS`] jobs, all its counts
//! together.
//!
//! Messages echo what was given, cut short when it is long: an argument, a
//! file's line (around the column at fault) and a message each show a few
//! hundred characters at most ([`place`]).
//!
//! Jobs of files may form a workflow (`name`, `after`, `run_if`): they are
//! linked and ordered parents first ([`flow`]), and [`Jobs`] checks what a
//! queue would refuse before anything is enqueued.

mod fields;
mod flow;
mod limits;
mod place;
mod schedules;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use runyard::params::JobParams;
use runyard::queue::{admit, Capabilities, Capability, NewJob, Queue};
use runyard::workflow::After;
use runyard::{Backoff, Engine, JobId, JobOptions, JobSpec, SubmitError, UnknownTask};
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use fields::{
    AfterEntry, Attempts, Concurrency, Count, FileKey, FileMode, FileOnConflict, FileRate,
    FileRunIf, ParamTable, Priority, RunAt,
};
pub(crate) use flow::{enqueue, Prepared};
use flow::{Links, Spot, Target};
pub(crate) use limits::MAX_JOBS;
use limits::{clip, ARG_CHARS};
pub(crate) use place::InputError;
pub(crate) use place::Source;
pub(crate) use schedules::{policy_of, read_sync_file, spec_of, Part, SpecInput};

pub(crate) const SYNTAX_HELP: &str = "\
JOBS ON THE COMMAND LINE
  TASK[:KEY=VALUE[,KEY=VALUE...]][*COUNT]

  cpu                      one job of `cpu` with default parameters
  cpu:n=5000               with n = 5000
  sleep:duration=250ms*4   four jobs
  fail:k=2,permanent=true  values are JSON when they parse as JSON, else strings

JOB FILES (-f FILE, TOML)
  [defaults]               # optional: mode, max_attempts, timeout, backoff, priority
  max_attempts = 3
  timeout = \"30s\"

  [[job]]
  task = \"cpu\"
  params = { n = 5000 }
  count = 4                # that many copies
  max_attempts = 2         # per-job options: the same keys as [defaults],
                           # and idempotency_key, isolate, run_at
  run_at = 2026-11-25T10:00:00Z   # not before (a TOML date-time or a string,
                                  # with Z or an offset such as +01:00)

WORKFLOWS (docs/workflows.md)
  [[job]]
  name = \"extract\"         # unique across the command's job files
  task = \"shell\"
  params = { cmd = [\"./extract.sh\"] }

  [[job]]
  name = \"load\"
  task = \"shell\"
  params = { cmd = [\"./load.sh\"] }
  after = [\"extract\", 17]  # names of this command's jobs, ids of jobs in the queue
  run_if = \"success\"       # the default; \"always\" runs once they have all ended

FLOW CONTROL (docs/flow-control.md)
  [[job]]
  task = \"call_api\"
  unique_key = \"sync-42\"     # no second job while one with the key waits
  unique_for = \"10m\"         # ... or succeeded this long ago or less
  on_conflict = \"replace\"    # the waiting job takes these params (default: skip)
  concurrency_key = \"tenant:42\"  # NAME or NAME:VALUE, shared across tasks
  concurrency = 2              # at most 2 at once of each value of the key
  rate_key = \"stripe\"
  rate = \"50/s\"              # COUNT/s, /m or /h: starts, across all workers
  # concurrency_key, concurrency, rate_key, rate, unique_for and on_conflict
  # may also go in [defaults]

  [limits.call_api]            # `run` only: the task's limits for this run
  concurrency = 4              # (a shared queue's are set with `runyard limit`)
  rate = \"10/s\"

COUNTS
  1 to 100000000 jobs per command: every `*COUNT` and `count =` together

PRECEDENCE
  a job's own options > command-line flags > the file's [defaults] > the task's defaults

DURATIONS
  250ms, 2s, 1m, 1h 30m, 7d; at most 100y";

/// What a command's jobs are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uses {
    /// Jobs to run or submit now.
    Now,
    /// The submission a schedule makes at each tick: one of each job, run
    /// when the tick fires, so no `count`, `*COUNT`, `run_at` or
    /// `idempotency_key`.
    Schedule,
}

/// Jobs named on the command line and in job files.
#[derive(Debug, Args)]
pub(crate) struct JobInput {
    #[arg(
        value_name = "JOB",
        help = "Jobs: TASK[:KEY=VALUE[,KEY=VALUE...]][*COUNT], e.g. `cpu`, `cpu:n=5000`, `sleep:duration=250ms*4`"
    )]
    pub(crate) jobs: Vec<String>,

    /// A TOML job file (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

impl JobInput {
    /// Every job named, checked: those on the command line, then each
    /// file's, in order, then put in an order where each comes after the
    /// jobs it is after.
    pub(crate) fn prepare(&self, engine: &Engine, flags: &JobOptions) -> Result<Jobs, InputError> {
        self.prepare_for(engine, flags, Uses::Now)
    }

    /// [`JobInput::prepare`] for `uses`.
    pub(crate) fn prepare_for(
        &self,
        engine: &Engine,
        flags: &JobOptions,
        uses: Uses,
    ) -> Result<Jobs, InputError> {
        let mut files = Vec::with_capacity(self.files.len());
        for path in &self.files {
            let text = std::fs::read_to_string(path).map_err(|e| {
                InputError::new(
                    path.display().to_string(),
                    format!("cannot read the job file: {e}"),
                )
            })?;
            files.push((path.clone(), text));
        }
        collect(engine, &self.jobs, files, flags, uses)
    }
}

/// The jobs of a command, checked and ordered, with the job files' texts
/// to point at what the queue refuses.
#[derive(Debug)]
pub(crate) struct Jobs {
    /// Parents before their children.
    pub(crate) list: Vec<Prepared>,
    files: Vec<(PathBuf, String)>,
    /// The job files' `[limits.TASK]` tables.
    limits: Vec<TaskLimit>,
}

/// A task's limits for one run, from a job file's `[limits.TASK]`.
#[derive(Debug, Clone)]
pub(crate) struct TaskLimit {
    /// The task.
    pub(crate) task: String,
    /// The most attempts of it at once.
    pub(crate) concurrency: Option<u32>,
    /// The most starts of it per window.
    pub(crate) rate: Option<runyard_core::Rate>,
    at: Spot,
}

impl Jobs {
    /// The jobs, all copies counted.
    pub(crate) fn total(&self) -> u64 {
        self.list.iter().map(|p| u64::from(p.count)).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn error(&self, at: &Spot, message: impl fmt::Display) -> InputError {
        let (path, text) = &self.files[at.file];
        Source { path, text }.error(Some(at.span.clone()), message)
    }

    /// The first edge to a job given by id, if any.
    fn first_id(&self) -> Option<&flow::Edge> {
        self.list
            .iter()
            .flat_map(|p| &p.edges)
            .find(|e| matches!(e.to, Target::Id(_)))
    }

    /// Refuses `[limits]` tables, for a command whose queue keeps its own
    /// (`submit`): a shared queue's stored limits are the one truth.
    pub(crate) fn refuse_limits(&self) -> Result<(), InputError> {
        match self.limits.first() {
            Some(l) => Err(self.error(
                &l.at,
                format!(
                    "a `[limits]` table is for `runyard run`; a shared queue keeps its own \
                     limits, for every worker: set them with `runyard limit --queue URL --task {} \
                     [--concurrency N] [--rate R]` (nothing was submitted)",
                    l.task
                ),
            )),
            None => Ok(()),
        }
    }

    /// Gives every job of a task with a `[limits.TASK]` table that task's
    /// limits for this run (in place of its task's defaults).
    pub(crate) fn apply_limits(&mut self) {
        for l in &self.limits {
            for p in self
                .list
                .iter_mut()
                .filter(|p| p.job.task.as_str() == l.task)
            {
                if let Some(c) = l.concurrency {
                    p.job.limits.task_concurrency = Some(c);
                }
                if let Some(r) = l.rate {
                    p.job.limits.task_rate = Some(r);
                }
            }
        }
    }

    /// Refuses `after` entries that are ids, for a command whose queue
    /// starts empty (`run`): no job could be there.
    pub(crate) fn refuse_ids(&self, why: &str) -> Result<(), InputError> {
        match self.first_id() {
            Some(e) => Err(self.error(&e.at, format!("`after` names job {}, but {why}", e.key))),
            None => Ok(()),
        }
    }

    /// Checks, before anything is enqueued, what the queue would refuse
    /// part-way: dependencies it does not keep, ids in `after` that name
    /// no job of it.
    pub(crate) fn check_queue(&self, queue: &dyn Queue) -> anyhow::Result<()> {
        self.check_against(&queue.capabilities(), |id| {
            Ok(queue.inspect()?.get(id)?.is_some())
        })
    }

    /// [`Jobs::check_queue`] for a queue with `caps`, where `exists` tells
    /// whether a job is in it.
    fn check_against(
        &self,
        caps: &Capabilities,
        mut exists: impl FnMut(JobId) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let Some(p) = self.list.iter().find(|p| !p.edges.is_empty()) else {
            return Ok(());
        };
        if !caps.has(Capability::Dependencies) {
            // The queue's own refusal, for one job that needs only them.
            let j = &p.job;
            let mut probe = NewJob::new(j.task.clone(), j.params.clone(), j.settings.clone());
            probe.after = vec![After::job(JobId(1))];
            if let Err(e) = admit(caps, &[probe]) {
                return Err(self.error(&p.edges[0].at, e).into());
            }
        }
        let mut checked = std::collections::HashSet::new();
        for e in self.list.iter().flat_map(|p| &p.edges) {
            if let Target::Id(id) = e.to {
                if checked.insert(id) && !exists(id)? {
                    return Err(self
                        .error(
                            &e.at,
                            format!(
                                "`after` names job {id}, which is not in the queue \
                                 (`runyard status` shows its jobs); nothing was enqueued"
                            ),
                        )
                        .into());
                }
            }
        }
        Ok(())
    }
}

/// The jobs of the command line and of the job files' texts, checked and
/// ordered.
pub(crate) fn collect(
    engine: &Engine,
    args: &[String],
    files: Vec<(PathBuf, String)>,
    flags: &JobOptions,
    uses: Uses,
) -> Result<Jobs, InputError> {
    let mut tally = Tally::default();
    let mut limits = Vec::new();
    let mut drafts: Vec<(Prepared, Links)> = from_args(engine, args, flags, &mut tally, uses)?
        .into_iter()
        .map(|p| (p, Links::default()))
        .collect();
    for (i, (path, text)) in files.iter().enumerate() {
        let src = Source { path, text };
        drafts.extend(from_text(
            engine,
            &src,
            i,
            flags,
            &mut tally,
            &mut limits,
            uses,
        )?);
    }
    let jobs = Jobs {
        list: Vec::new(),
        files,
        limits,
    };
    match flow::resolve(drafts) {
        Ok(list) => Ok(Jobs { list, ..jobs }),
        Err(r) => {
            let message = match &r.other {
                Some(o) => {
                    let e = jobs.error(o, "");
                    r.message.replace("{other}", &e.location)
                }
                None => r.message,
            };
            Err(jobs.error(&r.at, message))
        }
    }
}

/// The jobs a command names so far, against [`MAX_JOBS`].
#[derive(Debug, Default)]
struct Tally {
    total: u64,
}

impl Tally {
    /// Counts `count` more jobs; says why when that is too many.
    fn add(&mut self, count: u32) -> Result<(), String> {
        self.total += u64::from(count);
        if self.total > MAX_JOBS {
            return Err(format!(
                "with these {count} jobs the command names {} jobs, more than it may run \
                 (at most {MAX_JOBS} jobs per command, all counts together): split the work \
                 over several commands",
                self.total
            ));
        }
        Ok(())
    }
}

/// Reads the count after `*`: a whole number from 1 to [`MAX_JOBS`].
fn parse_count(c: &str) -> Result<u32, String> {
    if c.is_empty() {
        return Err(format!(
            "missing the count after `*` (a whole number from 1 to {MAX_JOBS})"
        ));
    }
    match c.parse::<u64>() {
        Ok(0) => Err("the count after `*` must be at least 1".into()),
        Ok(n) if n <= MAX_JOBS => Ok(n as u32),
        _ if c.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "the count after `*` is {}, more than one command may run (at most {MAX_JOBS} jobs)",
            clip(c, ARG_CHARS)
        )),
        _ => Err(format!(
            "the count after `*` must be a whole number from 1 to {MAX_JOBS}, got `{}`",
            clip(c, ARG_CHARS)
        )),
    }
}

/// Splits `TASK...*COUNT` into the job and its count. A `*` in the task's
/// name always starts a count (task names have none); one among the
/// parameters does when what follows it looks like a number (`*4`, `*-1`,
/// `*1.5`), and is part of a value otherwise (`cmd=ls *.txt`).
fn split_count(arg: &str) -> Result<(&str, u32), String> {
    let Some((body, c)) = arg.rsplit_once('*') else {
        return Ok((arg, 1));
    };
    let in_task = arg.find(':').is_none_or(|colon| colon > body.len());
    let unsigned = c.strip_prefix(['+', '-']).unwrap_or(c);
    let numeric = unsigned.starts_with(|ch: char| ch.is_ascii_digit())
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "._+-".contains(ch));
    if in_task || numeric {
        Ok((body, parse_count(c)?))
    } else {
        Ok((arg, 1))
    }
}

/// Reads one `TASK[:KEY=VALUE,...][*COUNT]` argument.
pub(crate) fn parse_job_arg(arg: &str) -> Result<(JobSpec, u32), String> {
    let (body, count) = split_count(arg)?;
    let (task, params) = match body.split_once(':') {
        Some((t, p)) => (t, Some(p)),
        None => (body, None),
    };
    if task.is_empty() {
        return Err("missing the task name (expected TASK[:KEY=VALUE,...][*COUNT])".into());
    }
    let mut map = serde_json::Map::new();
    for pair in params.map(split_top_level).unwrap_or_default() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got `{}`", clip(pair, ARG_CHARS)))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("missing the key in `{}`", clip(pair, ARG_CHARS)));
        }
        let value =
            serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
        if map.insert(k.to_string(), value).is_some() {
            return Err(format!("parameter `{}` is given twice", clip(k, ARG_CHARS)));
        }
    }
    let params = JobParams::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    Ok((JobSpec::new(task).with_params(params), count))
}

/// Splits on commas outside brackets, braces and quotes.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '[' | '{' if !in_str => depth += 1,
            ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() || !s.is_empty() {
        out.push(&s[start..]);
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Checks the command line's jobs.
fn from_args(
    engine: &Engine,
    args: &[String],
    flags: &JobOptions,
    tally: &mut Tally,
    uses: Uses,
) -> Result<Vec<Prepared>, InputError> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            let err = |message: String| {
                InputError::new(
                    format!("job `{}` (argument {})", clip(arg, ARG_CHARS), i + 1),
                    message,
                )
            };
            if uses == Uses::Schedule && split_count(arg).map_err(err)?.0.len() < arg.len() {
                return Err(err(
                    "`*COUNT` is not for a schedule: each tick makes one submission of the job; \
                     for several jobs per tick, give a job file (-f FILE) with a [[job]] table each"
                        .into(),
                ));
            }
            let (spec, count) = parse_job_arg(arg).map_err(err)?;
            let spec = spec.with_options(flags.clone());
            let job = engine.prepare(&spec).map_err(|e| err(submit_message(e)))?;
            tally.add(count).map_err(err)?;
            Ok(Prepared {
                job,
                count,
                edges: Vec::new(),
            })
        })
        .collect()
}

fn submit_message(e: SubmitError) -> String {
    match e {
        SubmitError::Options { error, .. } => error.to_string(),
        SubmitError::UnknownTask(e) => unknown_task_message(&e),
        other => other.to_string(),
    }
}

/// An unknown task in the command line's words: with no close name to
/// suggest, where the registered ones are listed.
pub(crate) fn unknown_task_message(e: &UnknownTask) -> String {
    if e.suggestions.is_empty() {
        format!("{e} (`runyard list` shows the registered tasks)")
    } else {
        e.to_string()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    #[serde(default)]
    defaults: Option<FileDefaults>,
    #[serde(default)]
    job: Vec<Spanned<FileJob>>,
    #[serde(default)]
    limits: Option<Spanned<std::collections::BTreeMap<String, Spanned<FileLimit>>>>,
}

/// One task's `[limits.TASK]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimit {
    concurrency: Option<Concurrency>,
    rate: Option<FileRate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDefaults {
    mode: Option<FileMode>,
    max_attempts: Option<Attempts>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    priority: Option<Priority>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    unique_for: Option<Duration>,
    on_conflict: Option<FileOnConflict>,
    concurrency_key: Option<FileKey>,
    concurrency: Option<Concurrency>,
    rate_key: Option<FileKey>,
    rate: Option<FileRate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJob {
    task: Spanned<String>,
    #[serde(default)]
    params: Option<Spanned<ParamTable>>,
    #[serde(default)]
    count: Option<Spanned<Count>>,
    mode: Option<FileMode>,
    max_attempts: Option<Attempts>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    priority: Option<Priority>,
    idempotency_key: Option<Spanned<String>>,
    isolate: Option<bool>,
    run_at: Option<Spanned<RunAt>>,
    name: Option<Spanned<String>>,
    after: Option<Vec<Spanned<AfterEntry>>>,
    run_if: Option<FileRunIf>,
    unique_key: Option<Spanned<String>>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    unique_for: Option<Duration>,
    on_conflict: Option<FileOnConflict>,
    concurrency_key: Option<FileKey>,
    concurrency: Option<Spanned<Concurrency>>,
    rate_key: Option<FileKey>,
    rate: Option<Spanned<FileRate>>,
}

/// Checks the jobs of a job file's text (the command's file number
/// `file`), with their workflow keys.
fn from_text(
    engine: &Engine,
    src: &Source<'_>,
    file_no: usize,
    flags: &JobOptions,
    tally: &mut Tally,
    task_limits: &mut Vec<TaskLimit>,
    uses: Uses,
) -> Result<Vec<(Prepared, Links)>, InputError> {
    let file: JobFile =
        toml::from_str(src.text).map_err(|e| src.error(e.span(), e.message().trim_end()))?;
    for (task, l) in file.limits.map(Spanned::into_inner).unwrap_or_default() {
        let at = Spot {
            file: file_no,
            span: l.span(),
        };
        if let Err(e) = engine.registry().lookup(&task) {
            return Err(src.error(
                Some(at.span),
                format!(
                    "[limits.{}]: {}",
                    clip(&task, ARG_CHARS),
                    unknown_task_message(&e)
                ),
            ));
        }
        let l = l.into_inner();
        if l.concurrency.is_none() && l.rate.is_none() {
            return Err(src.error(
                Some(at.span),
                format!(
                    "[limits.{task}] sets nothing: give `concurrency = N` (the most attempts of                      the task at once) and/or `rate = \"COUNT/s\"` (or /m, /h)"
                ),
            ));
        }
        if task_limits.iter().any(|t| t.task == task) {
            return Err(src.error(
                Some(at.span),
                format!("[limits.{task}] is given in more than one job file: give it once"),
            ));
        }
        task_limits.push(TaskLimit {
            task,
            concurrency: l.concurrency.map(|c| c.0),
            rate: l.rate.map(|r| r.0),
            at,
        });
    }
    let defaults = file.defaults.unwrap_or_default();
    let file_defaults = JobOptions {
        mode: defaults.mode.map(|m| m.0),
        max_attempts: defaults.max_attempts.map(|a| a.0),
        timeout: defaults.timeout,
        backoff: defaults.backoff,
        priority: defaults.priority.map(|p| p.0),
        unique_for: defaults.unique_for,
        on_conflict: defaults.on_conflict.map(|c| c.0),
        concurrency_key: defaults.concurrency_key.map(|k| k.0),
        concurrency: defaults.concurrency.map(|c| c.0),
        rate_key: defaults.rate_key.map(|k| k.0),
        rate: defaults.rate.map(|r| r.0),
        ..JobOptions::default()
    };
    let fallback = flags.or(&file_defaults);
    if file.job.is_empty() && task_limits.is_empty() {
        return Err(src.error(
            None,
            "the file has no jobs (expected one or more [[job]] tables)",
        ));
    }
    file.job
        .into_iter()
        .map(|entry| {
            let span = entry.span();
            let ctx = EntryContext {
                engine,
                src,
                file_no,
                fallback: &fallback,
                uses,
            };
            file_job(&ctx, span, entry.into_inner(), tally)
        })
        .collect()
}

/// What [`file_job`] reads an entry with.
struct EntryContext<'a> {
    engine: &'a Engine,
    src: &'a Source<'a>,
    file_no: usize,
    /// The command line's options over the file's `[defaults]`.
    fallback: &'a JobOptions,
    uses: Uses,
}

/// Checks one `[[job]]` entry (at `span` of its file), with its workflow
/// keys.
fn file_job(
    ctx: &EntryContext<'_>,
    span: Range<usize>,
    j: FileJob,
    tally: &mut Tally,
) -> Result<(Prepared, Links), InputError> {
    let EntryContext {
        engine,
        src,
        file_no,
        fallback,
        uses,
    } = *ctx;
    if uses == Uses::Schedule {
        refuse_for_schedule(src, &j)?;
    }
    let (count, count_span) = match &j.count {
        Some(c) => (c.get_ref().0, c.span()),
        None => (1, span.clone()),
    };
    let run_at = match j.run_at {
        Some(t) => Some(
            t.get_ref()
                .timestamp()
                .map_err(|e| src.error(Some(t.span()), format!("invalid run_at: {e}")))?,
        ),
        None => None,
    };
    let params_span = j.params.as_ref().map(|p| p.span());
    let params = match j.params {
        Some(p) => JobParams::from_value(Value::Object(p.into_inner().0))
            .map_err(|e| src.error(params_span.clone(), e))?,
        None => JobParams::empty(),
    };
    let own = JobOptions {
        max_attempts: j.max_attempts.map(|a| a.0),
        backoff: j.backoff,
        timeout: j.timeout,
        priority: j.priority.map(|p| p.0),
        run_at,
        idempotency_key: j.idempotency_key.map(Spanned::into_inner),
        mode: j.mode.map(|m| m.0),
        isolate: j.isolate,
        unique_key: j.unique_key.as_ref().map(|k| k.get_ref().clone()),
        unique_for: j.unique_for,
        on_conflict: j.on_conflict.map(|c| c.0),
        concurrency_key: j.concurrency_key.map(|k| k.0),
        concurrency: j.concurrency.as_ref().map(|c| c.get_ref().0),
        rate_key: j.rate_key.map(|k| k.0),
        rate: j.rate.as_ref().map(|r| r.get_ref().0),
    };
    let spec = JobSpec::new(j.task.get_ref().clone())
        .with_params(params)
        .with_options(own.or(fallback));
    let job = engine.prepare(&spec).map_err(|e| {
        let at = match &e {
            SubmitError::UnknownTask(_) => Some(j.task.span()),
            SubmitError::Params(_) => params_span.clone().or(Some(span.clone())),
            SubmitError::Options { error, .. } => match error.option {
                "unique_key" => j.unique_key.as_ref().map(|k| k.span()),
                "concurrency" => j.concurrency.as_ref().map(|c| c.span()),
                "rate" => j.rate.as_ref().map(|r| r.span()),
                _ => None,
            }
            .or(Some(span.clone())),
            _ => Some(span.clone()),
        };
        src.error(at, submit_message(e))
    })?;
    tally
        .add(count)
        .map_err(|e| src.error(Some(count_span), e))?;
    let spot = |span: Range<usize>| Spot {
        file: file_no,
        span,
    };
    let name = match j.name {
        Some(n) => {
            let text = n.get_ref();
            if let Some(why) = bad_name(text) {
                return Err(src.error(Some(n.span()), why));
            }
            Some((text.clone(), spot(n.span())))
        }
        None => None,
    };
    let links = Links {
        name,
        after: j
            .after
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let s = spot(a.span());
                (a.into_inner(), s)
            })
            .collect(),
        counted: j.count.is_some(),
    };
    let mut job = job;
    job.name = links.name.as_ref().map(|(n, _)| n.clone());
    job.run_if = j.run_if.map(|r| r.0).unwrap_or_default();
    let prepared = Prepared {
        job,
        count,
        edges: Vec::new(),
    };
    Ok((prepared, links))
}

/// Refuses the keys of a `[[job]]` entry that a schedule's submission
/// cannot have.
fn refuse_for_schedule(src: &Source<'_>, j: &FileJob) -> Result<(), InputError> {
    if let Some(c) = &j.count {
        return Err(src.error(
            Some(c.span()),
            "`count` is not for a schedule: each tick makes one submission, one job per \
             [[job]] table (give several tables for several jobs per tick)",
        ));
    }
    if let Some(t) = &j.run_at {
        return Err(src.error(
            Some(t.span()),
            "`run_at` is not for a schedule: its jobs are due at each tick (the schedule's \
             `cron` or `every` says when)",
        ));
    }
    if let Some(k) = &j.idempotency_key {
        return Err(src.error(
            Some(k.span()),
            "`idempotency_key` is not for a schedule: the first tick's job would hold the key \
             for good and no later tick would make one; to skip a tick while the last job \
             waits, give `unique_key` (or the schedule's `overlap = \"skip\"`)",
        ));
    }
    Ok(())
}

/// Why `name` cannot be a job's name, if it cannot.
fn bad_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a job's name cannot be empty".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "a job's name cannot be a number (`{}`): in `after` a number is the id of a job \
             in the queue",
            clip(name, ARG_CHARS)
        ));
    }
    None
}

#[cfg(test)]
mod tests;
