//! The stored form of a schedule's submission: its [`NewJob`]s as JSON,
//! the same for every backend.
//!
//! ```json
//! {"v":1,"jobs":[{"task":"report","params":{"day":"mon"},
//!   "settings":{"max_attempts":3,"backoff":"fixed:1s","timeout_us":null,
//!               "priority":0,"mode":"auto","isolate":false},
//!   "name":"extract","after":[],"run_if":"success", ...}]}
//! ```
//!
//! Every field of a [`NewJob`] is kept except `run_at` (a tick's jobs run
//! at once) and `schedule` (set by the queue when it fires). Durations are
//! whole microseconds (`*_us`); rates and keys are written as they are
//! typed (`10/s`, `tenant:42`). A reader refuses fields it does not know
//! rather than drop them, and a version it does not know.

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    After, Backoff, FlowKey, JobId, JobLimits, JobParams, JobSettings, Mode, OnConflict, Parent,
    Rate, RunIf, TaskName, Unique,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{QueueError, QueueErrorKind};
use crate::queue::NewJob;

/// The version [`encode_jobs`] writes.
const VERSION: u32 = 1;

/// The JSON a backend stores for a schedule's jobs.
pub fn encode_jobs(jobs: &[NewJob]) -> String {
    let doc = Doc {
        v: VERSION,
        jobs: jobs.iter().map(JobV1::of).collect(),
    };
    // Strings, numbers, booleans and checked JSON text: writing them to a
    // string cannot fail.
    serde_json::to_string(&doc).unwrap_or_default()
}

/// The jobs back from [`encode_jobs`]'s JSON.
///
/// Text that is not such JSON, or that holds a value no [`NewJob`] could
/// have, is a [`QueueErrorKind::Corrupt`] error naming the job and what is
/// wrong with it; a version this build does not read is
/// [`QueueErrorKind::Incompatible`].
pub fn decode_jobs(json: &str) -> Result<Vec<NewJob>, QueueError> {
    let head: Head<'_> = serde_json::from_str(json).map_err(|e| corrupt(format!("{e}")))?;
    if head.v != VERSION {
        return Err(QueueError::new(
            QueueErrorKind::Incompatible,
            format!(
                "a schedule's stored submission is of version {}; this runyard reads version {VERSION}",
                head.v
            ),
        ));
    }
    let mut out = Vec::with_capacity(head.jobs.len());
    for (i, raw) in head.jobs.iter().enumerate() {
        let job: JobV1 =
            serde_json::from_str(raw.get()).map_err(|e| corrupt(format!("job {}: {e}", i + 1)))?;
        out.push(
            job.into_new_job(i)
                .map_err(|why| corrupt(format!("job {}: {why}", i + 1)))?,
        );
    }
    Ok(out)
}

fn corrupt(why: String) -> QueueError {
    QueueError::new(
        QueueErrorKind::Corrupt,
        format!("a schedule's stored submission is damaged: {why}"),
    )
}

/// The document, as written.
#[derive(Serialize)]
struct Doc<'a> {
    v: u32,
    jobs: Vec<JobV1<'a>>,
}

/// The document, as first read: its version, and each job's text (read
/// once the version is known).
#[derive(Deserialize)]
#[serde(expecting = "an object of `v` (the version) and `jobs`")]
struct Head<'a> {
    v: u32,
    #[serde(borrow)]
    jobs: Vec<&'a RawValue>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a job object")]
struct JobV1<'a> {
    task: String,
    /// The parameters' JSON text, kept byte for byte.
    #[serde(borrow)]
    params: &'a RawValue,
    settings: SettingsV1,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    after: Vec<AfterV1>,
    #[serde(default)]
    run_if: RunIf,
    #[serde(default)]
    unique: Option<UniqueV1>,
    #[serde(default)]
    limits: LimitsV1,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsV1 {
    max_attempts: u32,
    backoff: Backoff,
    timeout_us: Option<u64>,
    priority: i32,
    mode: Mode,
    isolate: bool,
}

/// One edge: exactly one of `batch` (an earlier job of the submission, by
/// its index) and `job` (a job already in the queue, by its id).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<u64>,
    key: String,
    #[serde(default)]
    many: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UniqueV1 {
    key: String,
    within_us: Option<u64>,
    on_conflict: OnConflict,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsV1 {
    task_concurrency: Option<u32>,
    task_rate: Option<Rate>,
    concurrency_key: Option<KeyConcurrencyV1>,
    rate_key: Option<KeyRateV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyConcurrencyV1 {
    key: FlowKey,
    limit: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRateV1 {
    key: FlowKey,
    rate: Option<Rate>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<'a> JobV1<'a> {
    fn of(j: &'a NewJob) -> JobV1<'a> {
        let s = &j.settings;
        // Parameters are a JSON object when they were made; text that is
        // not JSON (from a damaged store) is written as null, which
        // `decode_jobs` refuses, naming the job.
        let params: &RawValue = serde_json::from_str(j.params.as_json()).unwrap_or(RawValue::NULL);
        JobV1 {
            task: j.task.as_str().to_owned(),
            params,
            settings: SettingsV1 {
                max_attempts: s.max_attempts,
                backoff: s.backoff,
                timeout_us: s.timeout.map(micros),
                priority: s.priority,
                mode: s.mode,
                isolate: s.isolate,
            },
            idempotency_key: j.idempotency_key.clone(),
            name: j.name.clone(),
            after: j
                .after
                .iter()
                .map(|a| {
                    let (batch, job) = match a.parent {
                        Parent::Batch(i) => (Some(i), None),
                        Parent::Job(id) => (None, Some(id.0)),
                    };
                    AfterV1 {
                        batch,
                        job,
                        key: a.key.clone(),
                        many: a.many,
                    }
                })
                .collect(),
            run_if: j.run_if,
            unique: j.unique.as_ref().map(|u| UniqueV1 {
                key: u.key.clone(),
                within_us: u.within.map(micros),
                on_conflict: u.on_conflict,
            }),
            limits: LimitsV1 {
                task_concurrency: j.limits.task_concurrency,
                task_rate: j.limits.task_rate,
                concurrency_key: j.limits.concurrency_key.as_ref().map(|(key, limit)| {
                    KeyConcurrencyV1 {
                        key: key.clone(),
                        limit: *limit,
                    }
                }),
                rate_key: j.limits.rate_key.as_ref().map(|(key, rate)| KeyRateV1 {
                    key: key.clone(),
                    rate: *rate,
                }),
            },
        }
    }

    /// The job, the `index`-th of its submission; what no job could hold
    /// is refused, saying what.
    fn into_new_job(self, index: usize) -> Result<NewJob, String> {
        if self.task.is_empty() {
            return Err("its task name is empty".into());
        }
        let params = self.params.get();
        if !params.trim_start().starts_with('{') {
            return Err(format!("its parameters are not a JSON object: {params}"));
        }
        let s = self.settings;
        if s.max_attempts == 0 {
            return Err("max_attempts is 0 (a job has at least 1 attempt)".into());
        }
        let mut after = Vec::with_capacity(self.after.len());
        for (e, a) in self.after.into_iter().enumerate() {
            let parent = match (a.batch, a.job) {
                (Some(p), None) if p < index => Parent::Batch(p),
                (Some(p), None) => {
                    return Err(format!(
                        "edge {} is after job {} of the submission, which does not come before it",
                        e + 1,
                        p + 1
                    ))
                }
                (None, Some(id)) => Parent::Job(JobId(id)),
                _ => {
                    return Err(format!(
                        "edge {} needs exactly one of `batch` (an earlier job's index) and `job` (a job id)",
                        e + 1
                    ))
                }
            };
            after.push(After {
                parent,
                key: a.key,
                many: a.many,
            });
        }
        let unique = self.unique.map(|u| Unique {
            key: u.key,
            within: u.within_us.map(Duration::from_micros),
            on_conflict: u.on_conflict,
        });
        if unique.as_ref().is_some_and(|u| u.key.is_empty()) {
            return Err("its unique key is empty".into());
        }
        let l = self.limits;
        Ok(NewJob {
            task: TaskName::from(self.task),
            params: JobParams::from_trusted_json(params),
            settings: Arc::new(JobSettings {
                max_attempts: s.max_attempts,
                backoff: s.backoff,
                timeout: s.timeout_us.map(Duration::from_micros),
                priority: s.priority,
                mode: s.mode,
                isolate: s.isolate,
            }),
            run_at: None,
            idempotency_key: self.idempotency_key,
            name: self.name,
            after,
            run_if: self.run_if,
            unique,
            limits: JobLimits {
                task_concurrency: l.task_concurrency,
                task_rate: l.task_rate,
                concurrency_key: l.concurrency_key.map(|k| (k.key, k.limit)),
                rate_key: l.rate_key.map(|k| (k.key, k.rate)),
            },
            schedule: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::{Jitter, Tick, Timestamp};

    use super::*;

    fn job(task: &str) -> NewJob {
        NewJob::new(
            TaskName::from(task),
            JobParams::empty(),
            Arc::new(JobSettings {
                max_attempts: 1,
                backoff: Backoff::None,
                timeout: None,
                priority: 0,
                mode: Mode::Auto,
                isolate: false,
            }),
        )
    }

    /// Parameters whose keys are not in order.
    const PARAMS: &str = r#"{"z":[1,2.5,"x\"y\u00e9\n"],"a":{"b":null}}"#;

    /// Every field, with a value other than its default.
    fn full() -> Vec<NewJob> {
        let first = NewJob {
            params: JobParams::from_trusted_json(PARAMS),
            settings: Arc::new(JobSettings {
                max_attempts: 7,
                backoff: Backoff::Exponential {
                    base: Duration::from_millis(250),
                    factor: 1.5,
                    cap: Duration::from_secs(90),
                    jitter: Jitter::Equal,
                },
                timeout: Some(Duration::from_micros(1_500_001)),
                priority: -3,
                mode: Mode::Process,
                isolate: true,
            }),
            idempotency_key: Some("daily:2026-12-02".into()),
            name: Some("extract".into()),
            unique: Some(Unique {
                key: "report".into(),
                within: Some(Duration::from_secs(3600)),
                on_conflict: OnConflict::Replace,
            }),
            limits: JobLimits {
                task_concurrency: Some(4),
                task_rate: Some("10/s".parse().unwrap()),
                concurrency_key: Some(("tenant:42".parse().unwrap(), Some(2))),
                rate_key: Some(("api".parse().unwrap(), Some("5/m".parse().unwrap()))),
            },
            ..job("extract")
        };
        let second = NewJob {
            settings: Arc::new(JobSettings {
                backoff: Backoff::Fixed(Duration::from_secs(2)),
                mode: Mode::Async,
                ..(*job("x").settings).clone()
            }),
            name: Some("load".into()),
            after: vec![
                After {
                    parent: Parent::Batch(0),
                    key: "extract".into(),
                    many: true,
                },
                After::job(JobId(991)),
            ],
            run_if: RunIf::Always,
            limits: JobLimits {
                concurrency_key: Some(("tenant".parse().unwrap(), None)),
                rate_key: Some(("api:eu".parse().unwrap(), None)),
                ..JobLimits::default()
            },
            ..job("load")
        };
        vec![first, second, job("plain")]
    }

    /// `NewJob` has no `PartialEq`: compare every field.
    fn assert_same(a: &NewJob, b: &NewJob) {
        assert_eq!(a.task, b.task);
        assert_eq!(a.params, b.params);
        assert_eq!(a.settings, b.settings);
        assert_eq!(a.run_at, b.run_at);
        assert_eq!(a.idempotency_key, b.idempotency_key);
        assert_eq!(a.name, b.name);
        assert_eq!(a.after, b.after);
        assert_eq!(a.run_if, b.run_if);
        assert_eq!(a.unique, b.unique);
        assert_eq!(a.limits, b.limits);
        assert_eq!(a.schedule, b.schedule);
    }

    #[test]
    fn every_field_comes_back() {
        let jobs = full();
        let text = encode_jobs(&jobs);
        assert!(text.starts_with(r#"{"v":1,"jobs":["#), "{text}");
        let back = decode_jobs(&text).unwrap();
        assert_eq!(back.len(), jobs.len());
        for (a, b) in jobs.iter().zip(&back) {
            assert_same(a, b);
        }
        // The parameters are kept as they were written, not re-ordered.
        assert_eq!(back[0].params.as_json(), jobs[0].params.as_json());
        assert_eq!(encode_jobs(&back), text);
        assert!(decode_jobs(&encode_jobs(&[])).unwrap().is_empty());
    }

    #[test]
    fn run_at_and_the_tick_are_not_kept() {
        let mut j = job("t");
        j.run_at = Some(Timestamp::from_micros(5));
        j.schedule = Some(Tick {
            schedule: "s".into(),
            tick: Timestamp::from_micros(5),
        });
        let back = decode_jobs(&encode_jobs(&[j])).unwrap();
        assert_eq!((back[0].run_at, back[0].schedule.clone()), (None, None));
    }

    #[test]
    fn parameters_that_are_not_json_are_refused_when_read_back() {
        let j = NewJob {
            params: JobParams::from_trusted_json("{not json"),
            ..job("t")
        };
        let e = decode_jobs(&encode_jobs(&[j])).unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::Corrupt);
        assert!(
            e.to_string()
                .contains("job 1: its parameters are not a JSON object: null"),
            "{e}"
        );
    }

    #[test]
    fn damaged_text_is_refused_saying_what_is_wrong() {
        let good = encode_jobs(&full());
        let cases = [
            ("", "EOF"),
            (
                "42",
                "invalid type: integer `42`, expected an object of `v`",
            ),
            (
                r#"{"v":1,"jobs":[7]}"#,
                "job 1: invalid type: integer `7`, expected a job object",
            ),
            (r#"{"jobs":[]}"#, "missing field `v`"),
            (r#"{"v":1}"#, "missing field `jobs`"),
            (
                &good.replacen(r#""task":"load""#, r#""task":"""#, 1),
                "job 2: its task name is empty",
            ),
            (
                &good.replacen(r#""max_attempts":7"#, r#""max_attempts":0"#, 1),
                "job 1: max_attempts is 0",
            ),
            (
                &good.replacen(r#""max_attempts":7"#, r#""max_attempts":"7""#, 1),
                "job 1: invalid type: string \"7\"",
            ),
            (
                &good.replacen(PARAMS, "[1]", 1),
                "job 1: its parameters are not a JSON object",
            ),
            (
                &good.replacen(r#""batch":0"#, r#""batch":1"#, 1),
                "job 2: edge 1 is after job 2 of the submission",
            ),
            (
                &good.replacen(r#""batch":0"#, r#""batch":0,"job":3"#, 1),
                "job 2: edge 1 needs exactly one of `batch`",
            ),
            (
                &good.replacen(r#""mode":"async""#, r#""mode":"fast""#, 1),
                "job 2: unknown variant `fast`",
            ),
            (
                &good.replacen(r#""task_rate":"10/s""#, r#""task_rate":"10/d""#, 1),
                "job 1: `10/d`: the window `d` is not s, m or h",
            ),
            (
                &good.replacen(r#""task":"plain""#, r#""task":"plain","colour":1"#, 1),
                "job 3: unknown field `colour`",
            ),
        ];
        for (text, says) in cases {
            let e = decode_jobs(text).unwrap_err();
            assert_eq!(e.kind(), QueueErrorKind::Corrupt, "{text}");
            let msg = e.to_string();
            assert!(
                msg.starts_with("a schedule's stored submission is damaged: "),
                "{msg}"
            );
            assert!(
                msg.contains(says),
                "{text}\n  gave: {msg}\n  wanted: {says}"
            );
        }
        let newer = good.replacen(r#"{"v":1"#, r#"{"v":2"#, 1);
        let e = decode_jobs(&newer).unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::Incompatible);
        assert!(e.to_string().contains("version 2"), "{e}");
    }
}
