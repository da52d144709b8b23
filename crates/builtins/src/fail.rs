//! `fail`: fails on purpose, for demos and tests of retry policies.

use runyard::{Context, Task, TaskError};
use serde::{Deserialize, Serialize};

/// Parameters of `fail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields, default)]
pub struct FailParams {
    /// Fail the first `k` attempts, then succeed; without `k`, always fail.
    pub k: Option<u32>,
    /// Make the error permanent (never retried).
    pub permanent: bool,
    /// The error message.
    pub message: Option<String>,
}

/// `fail`: fails its first `k` attempts, then succeeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fail;

impl Task for Fail {
    const NAME: &'static str = "fail";
    const DESCRIPTION: &'static str =
        "Fails its first `k` attempts, then succeeds (always fails without `k`; `permanent = true` is never retried)";
    type Params = FailParams;
    type Output = String;

    fn run(&self, p: FailParams, ctx: &Context) -> Result<String, TaskError> {
        let n = ctx.attempt();
        if p.k.is_some_and(|k| n > k) {
            return Ok(format!("succeeded on attempt {n}"));
        }
        let msg = match (&p.message, p.k) {
            (Some(m), _) => m.clone(),
            (None, Some(k)) => format!("failing on purpose (attempt {n} of the first {k})"),
            (None, None) => format!("failing on purpose (attempt {n})"),
        };
        Err(if p.permanent {
            TaskError::permanent(msg)
        } else {
            TaskError::retryable(msg)
        })
    }
}
