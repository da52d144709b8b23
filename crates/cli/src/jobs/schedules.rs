//! Schedules from the command line and from sync files: when a schedule
//! ticks (`cron` and `tz`, or `every`), its policy, and the submission each
//! tick makes (one job, or one workflow) — checked whole, with the file,
//! line and column of what is wrong, before anything is written.
//!
//! A sync file (`runyard schedule sync -f FILE`) holds `[[schedule]]`
//! entries: `name`, `cron` (and `tz`) or `every`, the policy keys
//! (`overlap`, `misfire_grace`, `catch_up`, `catch_up_max`), and either
//! the keys of one job (`task`, `params`, options) or `file = "PATH"`
//! naming a job file (one job or a workflow), relative to the sync file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runyard::queue::NewJob;
use runyard::{Backoff, Engine, JobOptions};
use runyard_core::{check_schedule_name, CatchUp, Overlap, Policy, Spec, Timestamp};
use runyard_queue::ScheduleDef;
use serde::Deserialize;
use toml::Spanned;

use super::fields::{
    Attempts, Concurrency, FileKey, FileMode, FileOnConflict, FileRate, ParamTable, Priority,
};
use super::flow::Target;
use super::place::Source;
use super::{collect, enqueue, file_job, EntryContext, FileJob, InputError, Jobs, Tally, Uses};

/// When a schedule ticks, as given: `cron` (with `tz`) or `every`.
#[derive(Debug, Default)]
pub(crate) struct SpecInput<'a> {
    pub(crate) cron: Option<&'a str>,
    pub(crate) tz: Option<&'a str>,
    pub(crate) every: Option<&'a str>,
}

/// Which part of a schedule's input is wrong (to point at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Cron,
    Tz,
    Every,
    Whole,
}

/// The spec of `input`, or what is wrong with it and where.
pub(crate) fn spec_of(input: &SpecInput<'_>) -> Result<Spec, (Part, String)> {
    match (input.cron, input.every) {
        (Some(_), Some(_)) => Err((
            Part::Every,
            "give `cron` or `every`, not both: a schedule ticks by one of them".into(),
        )),
        (None, None) => Err((
            Part::Whole,
            "say when it ticks: a cron expression (--cron \"0 3 * * *\", with --tz ZONE for \
             local time) or an interval (--every 15m)"
                .into(),
        )),
        (None, Some(e)) => {
            if input.tz.is_some() {
                return Err((
                    Part::Tz,
                    "a time zone is for a cron expression: an `every` schedule ticks in real \
                     time, whole intervals from when it was added"
                        .into(),
                ));
            }
            let d = runyard::duration::parse_positive_duration(e).map_err(|err| {
                (
                    Part::Every,
                    format!("interval `{e}`: {err} (e.g. \"30s\", \"15m\", \"1h\")"),
                )
            })?;
            // The anchor is the queue's now when it is stored.
            Spec::every(d, Timestamp::EPOCH).map_err(|err| (Part::Every, err.to_string()))
        }
        (Some(c), None) => Spec::cron(c, input.tz).map_err(|err| {
            let part = match err {
                runyard_core::ScheduleError::Zone(_) => Part::Tz,
                _ => Part::Cron,
            };
            (part, err.to_string())
        }),
    }
}

/// A policy key's value is wrong: which key, and why.
pub(crate) type PolicyError = (&'static str, String);

/// The policy of the keys given, over the defaults.
pub(crate) fn policy_of(
    overlap: Option<&str>,
    misfire_grace: Option<&str>,
    catch_up: Option<&str>,
    catch_up_max: Option<i64>,
) -> Result<Policy, PolicyError> {
    let mut p = Policy::default();
    if let Some(o) = overlap {
        p.overlap = Overlap::from_name(o).ok_or_else(|| {
            (
                "overlap",
                format!(
                    "`{o}` is not an overlap policy: `allow` (a tick fires while the last \
                     tick's job runs; the default) or `skip` (it is skipped)"
                ),
            )
        })?;
    }
    if let Some(g) = misfire_grace {
        p.misfire_grace = runyard::duration::parse_positive_duration(g).map_err(|e| {
            (
                "misfire_grace",
                format!(
                    "`{g}`: {e} (how late a tick may still fire, e.g. \"1m\", the default, or \"10s\")"
                ),
            )
        })?;
    }
    if let Some(c) = catch_up {
        p.catch_up = CatchUp::from_name(c).ok_or_else(|| {
            (
                "catch_up",
                format!(
                    "`{c}` is not a catch-up policy: `none` (missed ticks are dropped), \
                     `latest` (the last missed one fires; the default) or `all` (each, up \
                     to catch_up_max)"
                ),
            )
        })?;
    }
    if let Some(m) = catch_up_max {
        p.catch_up_max = u32::try_from(m).ok().filter(|&m| m >= 1).ok_or_else(|| {
            (
                "catch_up_max",
                format!(
                    "{m} is not a number of ticks: a whole number from 1 to {} (default 100)",
                    u32::MAX
                ),
            )
        })?;
    }
    Ok(p)
}

impl Jobs {
    /// The submission of a schedule's tick: the jobs, each after the
    /// earlier ones of it that it names, as one batch. Refuses jobs not
    /// linked into one workflow, `after` entries naming jobs in the queue
    /// and `[limits]` tables.
    pub(crate) fn submission(&self) -> Result<Vec<NewJob>, InputError> {
        self.refuse_limits()?;
        self.refuse_ids(
            "a schedule's jobs may be after jobs of its own submission only: each tick makes \
             new ones",
        )?;
        if self.list.len() > 1 {
            // Union-find over the edges: one workflow, or several.
            let mut root: Vec<usize> = (0..self.list.len()).collect();
            fn find(root: &mut [usize], mut i: usize) -> usize {
                while root[i] != i {
                    root[i] = root[root[i]];
                    i = root[i];
                }
                i
            }
            for (i, p) in self.list.iter().enumerate() {
                for e in &p.edges {
                    if let Target::Entry(t) = e.to {
                        let (a, b) = (find(&mut root, i), find(&mut root, t));
                        root[a] = b;
                    }
                }
            }
            let first = find(&mut root, 0);
            if (1..self.list.len()).any(|i| find(&mut root, i) != first) {
                let at = self.files.first().map(|(p, _)| p.display().to_string());
                return Err(InputError::new(
                    at.unwrap_or_else(|| "the jobs".into()),
                    "a schedule submits one job, or one workflow (jobs linked by `after`): \
                     these jobs are not all linked; give each its own schedule",
                ));
            }
        }
        let mut out = Vec::new();
        enqueue(&self.list, usize::MAX, |batch| {
            out = batch;
            Ok(Vec::new())
        })
        .map_err(|e| InputError::new("the jobs", format!("{e:#}")))?;
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncFile {
    #[serde(default)]
    schedule: Vec<Spanned<SyncEntry>>,
}

/// One `[[schedule]]` entry: the schedule's keys, and those of its job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncEntry {
    name: Spanned<String>,
    cron: Option<Spanned<String>>,
    tz: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    overlap: Option<Spanned<String>>,
    misfire_grace: Option<Spanned<String>>,
    catch_up: Option<Spanned<String>>,
    catch_up_max: Option<Spanned<i64>>,
    file: Option<Spanned<String>>,
    // The job's keys.
    task: Option<Spanned<String>>,
    #[serde(default)]
    params: Option<Spanned<ParamTable>>,
    mode: Option<FileMode>,
    max_attempts: Option<Attempts>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    priority: Option<Priority>,
    isolate: Option<bool>,
    unique_key: Option<Spanned<String>>,
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    unique_for: Option<Duration>,
    on_conflict: Option<FileOnConflict>,
    concurrency_key: Option<FileKey>,
    concurrency: Option<Spanned<Concurrency>>,
    rate_key: Option<FileKey>,
    rate: Option<Spanned<FileRate>>,
    // Refused, with their place.
    count: Option<Spanned<toml::Value>>,
    run_at: Option<Spanned<toml::Value>>,
    after: Option<Spanned<toml::Value>>,
    run_if: Option<Spanned<toml::Value>>,
    idempotency_key: Option<Spanned<toml::Value>>,
}

/// Reads and checks every schedule of the sync file at `path`.
pub(crate) fn read_sync_file(
    engine: &Engine,
    path: &Path,
    flags: &JobOptions,
) -> Result<Vec<ScheduleDef>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::new(
            path.display().to_string(),
            format!("cannot read the schedule file: {e}"),
        )
    })?;
    let src = Source { path, text: &text };
    let file: SyncFile =
        toml::from_str(&text).map_err(|e| src.error(e.span(), sync_message(e.message())))?;
    if file.schedule.is_empty() {
        return Err(src.error(
            None,
            "the file has no schedules (expected [[schedule]] tables with `name`, `cron` or \
             `every`, and a job's `task` or a job `file`)",
        ));
    }
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    let mut out = Vec::with_capacity(file.schedule.len());
    for entry in file.schedule {
        let span = entry.span();
        let e = entry.into_inner();
        let name = e.name.get_ref();
        check_schedule_name(name).map_err(|err| src.error(Some(e.name.span()), err))?;
        if let Some(first) = seen.get(name) {
            let (line, _) = line_col(&text, first.start);
            return Err(src.error(
                Some(e.name.span()),
                format!(
                    "the schedule `{name}` is given twice (first at line {line}); names are unique"
                ),
            ));
        }
        seen.insert(name.clone(), e.name.span());
        out.push(entry_def(engine, &src, span, e, flags)?);
    }
    Ok(out)
}

/// A sync file's parse error in its words: an unknown key is told with the
/// keys an entry takes (serde's list would name the refused ones too).
fn sync_message(m: &str) -> String {
    let m = m.trim_end();
    match m
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
    {
        Some((key, rest)) if rest.contains("`name`") => format!(
            "unknown key `{key}` in a [[schedule]] entry: it takes `name`, `cron` (with `tz`) \
             or `every`, `overlap`, `misfire_grace`, `catch_up`, `catch_up_max`, and either a \
             job's keys (`task`, `params`, `mode`, `max_attempts`, `timeout`, `backoff`, \
             `priority`, `isolate`, `unique_key`, `unique_for`, `on_conflict`, \
             `concurrency_key`, `concurrency`, `rate_key`, `rate`) or `file`"
        ),
        Some((key, _)) => {
            format!("unknown table or key `{key}`: a schedule file holds [[schedule]] tables")
        }
        None => m.to_string(),
    }
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// The schedule of one entry.
fn entry_def(
    engine: &Engine,
    src: &Source<'_>,
    span: Range<usize>,
    e: SyncEntry,
    flags: &JobOptions,
) -> Result<ScheduleDef, InputError> {
    let refused = [
        ("count", &e.count, "each tick makes one submission, one job per entry (for several jobs, name a job `file`)"),
        ("run_at", &e.run_at, "its jobs are due at each tick"),
        ("after", &e.after, "an entry is one job; for a workflow, name a job `file` whose jobs are linked"),
        ("run_if", &e.run_if, "an entry is one job; for a workflow, name a job `file` whose jobs are linked"),
        ("idempotency_key", &e.idempotency_key, "the first tick's job would hold it for good; give `unique_key` or `overlap = \"skip\"`"),
    ];
    for (key, v, why) in refused {
        if let Some(v) = v {
            return Err(src.error(
                Some(v.span()),
                format!("`{key}` is not for a schedule: {why}"),
            ));
        }
    }
    let spec = spec_of(&SpecInput {
        cron: e.cron.as_ref().map(|c| c.get_ref().as_str()),
        tz: e.tz.as_ref().map(|c| c.get_ref().as_str()),
        every: e.every.as_ref().map(|c| c.get_ref().as_str()),
    })
    .map_err(|(part, why)| {
        let at = match part {
            Part::Cron => e.cron.as_ref().map(Spanned::span),
            Part::Tz => e.tz.as_ref().map(Spanned::span),
            Part::Every => e.every.as_ref().map(Spanned::span),
            Part::Whole => None,
        };
        src.error(at.or(Some(span.clone())), why)
    })?;
    let policy = policy_of(
        e.overlap.as_ref().map(|v| v.get_ref().as_str()),
        e.misfire_grace.as_ref().map(|v| v.get_ref().as_str()),
        e.catch_up.as_ref().map(|v| v.get_ref().as_str()),
        e.catch_up_max.as_ref().map(|v| *v.get_ref()),
    )
    .map_err(|(key, why)| {
        let at = match key {
            "overlap" => e.overlap.as_ref().map(Spanned::span),
            "misfire_grace" => e.misfire_grace.as_ref().map(Spanned::span),
            "catch_up" => e.catch_up.as_ref().map(Spanned::span),
            _ => e.catch_up_max.as_ref().map(Spanned::span),
        };
        src.error(at, format!("`{key}`: {why}"))
    })?;
    let name = e.name.get_ref().clone();
    let jobs = match (&e.file, &e.task) {
        (Some(f), Some(t)) => {
            let _ = f;
            return Err(src.error(
                Some(t.span()),
                "give the job's keys (`task`, `params`, ...) or a job `file`, not both",
            ));
        }
        (None, None) => {
            return Err(src.error(
                Some(span),
                "say what each tick runs: a job's `task` (with `params` and options), or \
                 `file = \"PATH\"` naming a job file",
            ))
        }
        (Some(f), None) => {
            if let Some(k) = first_job_key(&e) {
                return Err(src.error(
                    Some(span),
                    format!("`{k}` is a job's key: with a job `file`, the file holds the job"),
                ));
            }
            let rel = Path::new(f.get_ref());
            let path: PathBuf = match src.path.parent() {
                Some(dir) if rel.is_relative() => dir.join(rel),
                _ => rel.to_path_buf(),
            };
            let text = std::fs::read_to_string(&path).map_err(|err| {
                src.error(
                    Some(f.span()),
                    format!("cannot read the job file {}: {err}", path.display()),
                )
            })?;
            let jobs = collect(engine, &[], vec![(path, text)], flags, Uses::Schedule)?;
            jobs.submission()?
        }
        (None, Some(task)) => {
            let task = task.clone();
            let j = FileJob {
                task,
                params: e.params,
                count: None,
                mode: e.mode,
                max_attempts: e.max_attempts,
                timeout: e.timeout,
                backoff: e.backoff,
                priority: e.priority,
                idempotency_key: None,
                isolate: e.isolate,
                run_at: None,
                name: None,
                after: None,
                run_if: None,
                unique_key: e.unique_key,
                unique_for: e.unique_for,
                on_conflict: e.on_conflict,
                concurrency_key: e.concurrency_key,
                concurrency: e.concurrency,
                rate_key: e.rate_key,
                rate: e.rate,
            };
            let ctx = EntryContext {
                engine,
                src,
                file_no: 0,
                fallback: flags,
                uses: Uses::Schedule,
            };
            let (p, _) = file_job(&ctx, span, j, &mut Tally::default())?;
            vec![p.job]
        }
    };
    Ok(ScheduleDef {
        name,
        spec,
        policy,
        jobs,
    })
}

/// A job key given beside `file`, if any.
fn first_job_key(e: &SyncEntry) -> Option<&'static str> {
    [
        ("params", e.params.is_some()),
        ("mode", e.mode.is_some()),
        ("max_attempts", e.max_attempts.is_some()),
        ("timeout", e.timeout.is_some()),
        ("backoff", e.backoff.is_some()),
        ("priority", e.priority.is_some()),
        ("isolate", e.isolate.is_some()),
        ("unique_key", e.unique_key.is_some()),
        ("unique_for", e.unique_for.is_some()),
        ("on_conflict", e.on_conflict.is_some()),
        ("concurrency_key", e.concurrency_key.is_some()),
        ("concurrency", e.concurrency.is_some()),
        ("rate_key", e.rate_key.is_some()),
        ("rate", e.rate.is_some()),
    ]
    .into_iter()
    .find(|(_, given)| *given)
    .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_spec_needs_no_zone_and_at_least_a_second() {
        let every = |e: &str, tz: Option<&str>| {
            spec_of(&SpecInput {
                cron: None,
                tz,
                every: Some(e),
            })
        };
        assert!(
            matches!(every("15m", None), Ok(Spec::Every { every, .. }) if every == Duration::from_secs(900))
        );
        assert_eq!(every("15m", Some("UTC")).unwrap_err().0, Part::Tz);
        let (part, why) = every("500ms", None).unwrap_err();
        assert_eq!(part, Part::Every);
        assert!(why.contains("at most once a second"), "{why}");
        let (part, why) = every("soon", None).unwrap_err();
        assert_eq!(part, Part::Every);
        assert!(why.contains("e.g."), "{why}");
        let (part, _) = spec_of(&SpecInput::default()).unwrap_err();
        assert_eq!(part, Part::Whole);
    }

    #[test]
    fn policy_keys_are_checked_and_say_what_is_valid() {
        let p = policy_of(Some("skip"), Some("10s"), Some("all"), Some(5)).unwrap();
        assert_eq!(p.overlap, Overlap::Skip);
        assert_eq!(p.misfire_grace, Duration::from_secs(10));
        assert_eq!((p.catch_up, p.catch_up_max), (CatchUp::All, 5));
        assert_eq!(
            policy_of(None, None, None, None).unwrap(),
            Policy::default()
        );
        let (key, why) = policy_of(Some("never"), None, None, None).unwrap_err();
        assert_eq!(key, "overlap");
        assert!(why.contains("`allow`") && why.contains("`skip`"), "{why}");
        assert_eq!(
            policy_of(None, None, Some("most"), None).unwrap_err().0,
            "catch_up"
        );
        assert_eq!(
            policy_of(None, None, None, Some(0)).unwrap_err().0,
            "catch_up_max"
        );
        assert_eq!(
            policy_of(None, Some("0s"), None, None).unwrap_err().0,
            "misfire_grace"
        );
    }
}
