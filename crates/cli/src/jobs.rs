//! Where jobs come from: `TASK:KEY=VALUE*COUNT` arguments and TOML job files.
//!
//! Every job is checked (task, parameters, options, mode) before any runs;
//! an error names where the job came from: the argument, or the file, line
//! and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runyard::queue::NewJob;
use runyard::{Backoff, Engine, JobOptions, JobParams, JobSpec, Mode, SubmitError, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

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

PRECEDENCE
  a job's own options > command-line flags > the file's [defaults] > the task's defaults

DURATIONS
  250ms, 2s, 1m, 1h 30m, 7d; at most 100y";

/// A checked job, with how many copies to run.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) job: NewJob,
    pub(crate) count: u32,
}

/// Bad input: where, what, and the offending line when it is in a file.
#[derive(Debug)]
pub(crate) struct InputError {
    location: String,
    message: String,
    snippet: Option<(usize, String, usize, usize)>,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some((line, text, col, width)) = &self.snippet {
            let num = line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n{pad} |\n{num} | {text}\n{pad} | {}{}",
                " ".repeat(col.saturating_sub(1)),
                "^".repeat((*width).max(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

impl crate::args::JobInput {
    /// Every job named, checked: those on the command line, then each
    /// file's, in order.
    pub(crate) fn prepare(
        &self,
        engine: &Engine,
        flags: &JobOptions,
    ) -> Result<Vec<Prepared>, InputError> {
        let mut prepared = from_args(engine, &self.jobs, flags)?;
        for f in &self.files {
            prepared.extend(from_file(engine, f, flags)?);
        }
        Ok(prepared)
    }
}

/// Reads one `TASK[:KEY=VALUE,...][*COUNT]` argument.
pub(crate) fn parse_job_arg(arg: &str) -> Result<(JobSpec, u32), String> {
    let (body, count) = match arg.rsplit_once('*') {
        Some((b, c)) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = c.parse().map_err(|_| format!("count `{c}` is too large"))?;
            if n == 0 {
                return Err("the count after `*` must be at least 1".into());
            }
            (b, n)
        }
        _ => (arg, 1),
    };
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
            .ok_or_else(|| format!("expected KEY=VALUE, got `{pair}`"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("missing the key in `{pair}`"));
        }
        let value =
            serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
        if map.insert(k.to_string(), value).is_some() {
            return Err(format!("parameter `{k}` is given twice"));
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
) -> Result<Vec<Prepared>, InputError> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            let err = |message: String| InputError {
                location: format!("job `{arg}` (argument {})", i + 1),
                message,
                snippet: None,
            };
            let (spec, count) = parse_job_arg(arg).map_err(err)?;
            let spec = spec.with_options(flags.clone());
            let job = engine.prepare(&spec).map_err(|e| err(submit_message(e)))?;
            Ok(Prepared { job, count })
        })
        .collect()
}

fn submit_message(e: SubmitError) -> String {
    match e {
        SubmitError::Options { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    #[serde(default)]
    defaults: Option<FileDefaults>,
    #[serde(default)]
    job: Vec<Spanned<FileJob>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDefaults {
    mode: Option<Mode>,
    max_attempts: Option<u32>,
    #[serde(default, with = "runyard::serde_duration::option")]
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    priority: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJob {
    task: Spanned<String>,
    #[serde(default)]
    params: Option<Spanned<toml::Table>>,
    #[serde(default)]
    count: Option<Spanned<u32>>,
    mode: Option<Mode>,
    max_attempts: Option<u32>,
    #[serde(default, with = "runyard::serde_duration::option")]
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    priority: Option<i32>,
    idempotency_key: Option<String>,
    isolate: Option<bool>,
    run_at: Option<Spanned<String>>,
}

/// A file's text, to turn byte offsets into lines and columns.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> InputError {
        let path = self.path.display();
        match span {
            Some(span) => {
                let start = span.start.min(self.text.len());
                let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_no = self.text[..start].matches('\n').count() + 1;
                let col = self.text[line_start..start].chars().count() + 1;
                let line_end = self.text[start..]
                    .find('\n')
                    .map_or(self.text.len(), |i| start + i);
                let text = self.text[line_start..line_end]
                    .trim_end_matches('\r')
                    .to_string();
                let end = span.end.min(line_end).max(start);
                let width = self.text[start..end].chars().count();
                InputError {
                    location: format!("{path}:{line_no}:{col}"),
                    message: message.into(),
                    snippet: Some((line_no, text, col, width)),
                }
            }
            None => InputError {
                location: path.to_string(),
                message: message.into(),
                snippet: None,
            },
        }
    }
}

/// Reads and checks a TOML job file.
fn from_file(
    engine: &Engine,
    path: &Path,
    flags: &JobOptions,
) -> Result<Vec<Prepared>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        location: path.display().to_string(),
        message: format!("cannot read the job file: {e}"),
        snippet: None,
    })?;
    let src = Source { path, text: &text };
    let file: JobFile =
        toml::from_str(&text).map_err(|e| src.error(e.span(), e.message().trim_end()))?;
    let defaults = file.defaults.unwrap_or_default();
    let file_defaults = JobOptions {
        mode: defaults.mode,
        max_attempts: defaults.max_attempts,
        timeout: defaults.timeout,
        backoff: defaults.backoff,
        priority: defaults.priority,
        ..JobOptions::default()
    };
    let fallback = flags.or(&file_defaults);
    if file.job.is_empty() {
        return Err(src.error(
            None,
            "the file has no jobs (expected one or more [[job]] tables)",
        ));
    }
    file.job
        .into_iter()
        .map(|entry| {
            let span = entry.span();
            let j = entry.into_inner();
            let count = match j.count {
                Some(c) if *c.get_ref() == 0 => {
                    return Err(src.error(Some(c.span()), "count must be at least 1"))
                }
                Some(c) => c.into_inner(),
                None => 1,
            };
            let run_at = match j.run_at {
                Some(t) => Some(Timestamp::parse_rfc3339(t.get_ref()).map_err(|e| {
                    src.error(
                        Some(t.span()),
                        format!("invalid run_at: {e} (expected e.g. \"2026-11-25T10:00:00Z\")"),
                    )
                })?),
                None => None,
            };
            let params_span = j.params.as_ref().map(|p| p.span());
            let params = match j.params {
                Some(p) => {
                    let v = serde_json::to_value(p.into_inner())
                        .map_err(|e| src.error(params_span.clone(), e.to_string()))?;
                    JobParams::from_value(v)
                        .map_err(|e| src.error(params_span.clone(), e.to_string()))?
                }
                None => JobParams::empty(),
            };
            let own = JobOptions {
                max_attempts: j.max_attempts,
                backoff: j.backoff,
                timeout: j.timeout,
                priority: j.priority,
                run_at,
                idempotency_key: j.idempotency_key,
                mode: j.mode,
                isolate: j.isolate,
            };
            let spec = JobSpec::new(j.task.get_ref().clone())
                .with_params(params)
                .with_options(own.or(&fallback));
            let job = engine.prepare(&spec).map_err(|e| {
                let at = match &e {
                    SubmitError::UnknownTask(_) => Some(j.task.span()),
                    SubmitError::Params(_) => params_span.clone().or(Some(span.clone())),
                    _ => Some(span.clone()),
                };
                src.error(at, submit_message(e))
            })?;
            Ok(Prepared { job, count })
        })
        .collect()
}

/// The path for messages: `-` is standard output.
pub(crate) fn is_stdout(p: &Path) -> bool {
    p == Path::new("-")
}

/// Opens an output file before anything runs, so a bad path is an input error.
pub(crate) fn create_output(
    p: &PathBuf,
    what: &str,
) -> Result<Box<dyn std::io::Write + Send>, InputError> {
    if is_stdout(p) {
        return Ok(Box::new(std::io::stdout()));
    }
    std::fs::File::create(p)
        .map(|f| Box::new(f) as Box<dyn std::io::Write + Send>)
        .map_err(|e| InputError {
            location: p.display().to_string(),
            message: format!("cannot create the {what} file: {e}"),
            snippet: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_args_read_params_counts_and_json_values() {
        let (s, n) = parse_job_arg("cpu").unwrap();
        assert_eq!((s.task.as_str(), n, s.params.as_json()), ("cpu", 1, "{}"));
        let (s, n) = parse_job_arg("sleep:duration=250ms*4").unwrap();
        assert_eq!((s.task.as_str(), n), ("sleep", 4));
        assert_eq!(
            s.params.to_value(),
            serde_json::json!({"duration": "250ms"})
        );
        let (s, _) = parse_job_arg(r#"x:k=2,permanent=true,tags=["a,b",1],name="q,r""#).unwrap();
        assert_eq!(
            s.params.to_value(),
            serde_json::json!({"k": 2, "permanent": true, "tags": ["a,b", 1], "name": "q,r"})
        );
    }

    #[test]
    fn bad_job_args_say_what_is_expected() {
        assert!(parse_job_arg(":n=1")
            .unwrap_err()
            .contains("missing the task name"));
        assert!(parse_job_arg("cpu:n")
            .unwrap_err()
            .contains("expected KEY=VALUE, got `n`"));
        assert!(parse_job_arg("cpu:n=1,n=2")
            .unwrap_err()
            .contains("given twice"));
        assert!(parse_job_arg("cpu*0").unwrap_err().contains("at least 1"));
    }
}
