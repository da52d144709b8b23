//! Jobs that wait for other jobs: what a job is after, when it runs, why it
//! was cancelled, and the object of its parents' outputs.
//!
//! A job with parents ([`After`]) is `blocked` until each of them has
//! ended. With [`RunIf::Success`] (the default) it becomes `queued` once
//! they have all succeeded, and it is cancelled, naming the [`Cause`], as
//! soon as one of them ends dead or cancelled; with [`RunIf::Always`] it
//! becomes `queued` once they have all ended, whatever their outcome.
//!
//! # The parents object
//!
//! An attempt sees its parents' outputs as one JSON object ([`Parents`]):
//! each edge's key maps to the parent's output, or, for a key that names
//! several copies ([`After::many`]), to the list of their outputs in
//! submission order. A stored output is at most [`OUTPUT_CAP`] bytes of
//! JSON (a larger one is kept as a marker that counts what
//! was dropped), and the object given to one attempt at most
//! [`PARENTS_CAP`]: past it, outputs are given as such markers with nothing
//! kept. So a fan-in of 10,000 parents stays bounded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::job::JobId;
use crate::outcome::Output;

/// When a job with parents runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunIf {
    /// Once every parent has succeeded; cancelled when one ends dead or
    /// cancelled.
    #[default]
    Success,
    /// Once every parent has ended, whatever the outcome (a cleanup step).
    Always,
}

impl RunIf {
    /// Every value, as files write them.
    pub const ALL: [RunIf; 2] = [RunIf::Success, RunIf::Always];

    /// The name in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RunIf::Success => "success",
            RunIf::Always => "always",
        }
    }

    /// Its code in a database column.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The value of a database code (anything unknown is `Success`).
    pub fn from_code(code: i64) -> RunIf {
        if code == 1 {
            RunIf::Always
        } else {
            RunIf::Success
        }
    }
}

impl fmt::Display for RunIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunIf {
    type Err = String;

    fn from_str(s: &str) -> Result<RunIf, String> {
        RunIf::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown run_if `{s}` (expected \"success\" or \"always\")"))
    }
}

/// Which job a job is after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parent {
    /// A job of the same batch, by its index in it; it comes earlier in
    /// the batch (a batch is in an order where parents come first).
    Batch(usize),
    /// A job already in the queue.
    Job(JobId),
}

/// One edge: a parent, and how the job sees its output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct After {
    /// The parent.
    pub parent: Parent,
    /// The key of its output in the parents object: the parent's name, or
    /// its id for a parent given by id.
    pub key: String,
    /// Whether the key names several copies (a name given to a job with a
    /// count): its value is then a list of their outputs.
    pub many: bool,
}

impl After {
    /// An edge to a job already in the queue, seen under its id.
    pub fn job(id: JobId) -> After {
        After {
            parent: Parent::Job(id),
            key: id.to_string(),
            many: false,
        }
    }
}

/// Why a job was cancelled without running: the job whose end cancelled
/// it (for a chain of dependents, the job that ended first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// The job.
    pub job: JobId,
    /// Its name, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "job {} ({n})", self.job),
            None => write!(f, "job {}", self.job),
        }
    }
}

/// The largest output a queue stores, in bytes of JSON.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// The largest parents object one attempt is given, in bytes of JSON.
pub const PARENTS_CAP: usize = 16 * 1024 * 1024;

/// The marker kept for an output of `bytes` bytes that was not kept whole:
/// `{"truncated": {"bytes": N, "kept": "<the first bytes of its JSON>"}}`.
pub(crate) fn truncated(json: &str, keep: usize) -> Output {
    let mut end = keep.min(json.len());
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    let marker = serde_json::json!({
        "truncated": {"bytes": json.len(), "kept": &json[..end]}
    });
    Output::from_serialize(&marker).unwrap_or_default()
}

impl Output {
    /// The output as a queue stores it: itself when at most [`OUTPUT_CAP`]
    /// bytes of JSON, a marker counting its bytes otherwise (see the module).
    pub fn capped(self) -> Output {
        if self.as_json().len() <= OUTPUT_CAP {
            self
        } else {
            // Room for the marker's own keys and the escapes of the kept text.
            truncated(self.as_json(), OUTPUT_CAP / 2)
        }
    }
}

/// Builds the parents object (see the module's opening) from edges in
/// order: `push(key, many, output)` for each, `finish` for the JSON.
#[derive(Debug, Default)]
pub struct Parents {
    /// Keys in first-seen order, each with its outputs.
    keys: Vec<(String, bool, Vec<String>)>,
    /// Where each key is in `keys`: a job after many differently named
    /// parents finds each in constant time.
    index: std::collections::HashMap<String, usize>,
    bytes: usize,
}

impl Parents {
    /// An empty object.
    pub fn new() -> Parents {
        Parents::default()
    }

    /// Adds one edge's output.
    pub fn push(&mut self, key: &str, many: bool, output: &Output) {
        let json = output.as_json();
        let json = if self.bytes + json.len() > PARENTS_CAP {
            truncated(json, 0).as_json().to_string()
        } else {
            json.to_string()
        };
        self.bytes += json.len() + key.len() + 4;
        match self.index.get(key) {
            Some(&at) => self.keys[at].2.push(json),
            None => {
                self.index.insert(key.to_string(), self.keys.len());
                self.keys.push((key.to_string(), many, vec![json]));
            }
        }
    }

    /// Whether no edge was added.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The object as JSON.
    pub fn finish(self) -> Output {
        if self.keys.is_empty() {
            return Output::none();
        }
        let mut s = String::with_capacity(self.bytes + 2);
        s.push('{');
        for (i, (key, many, outs)) in self.keys.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".into()));
            s.push(':');
            if *many || outs.len() > 1 {
                s.push('[');
                s.push_str(&outs.join(","));
                s.push(']');
            } else {
                s.push_str(&outs[0]);
            }
        }
        s.push('}');
        Output::from_json(&s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parents_object_groups_copies_in_order() {
        let mut p = Parents::new();
        p.push(
            "extract",
            false,
            &Output::from_json("{\"rows\":3}").unwrap(),
        );
        p.push("shard", true, &Output::from_json("1").unwrap());
        p.push("shard", true, &Output::none());
        p.push("17", false, &Output::from_json("\"x\"").unwrap());
        assert_eq!(
            p.finish().as_json(),
            r#"{"extract":{"rows":3},"shard":[1,null],"17":"x"}"#
        );
        let mut one = Parents::new();
        one.push("shard", true, &Output::from_json("1").unwrap());
        assert_eq!(one.finish().as_json(), r#"{"shard":[1]}"#);
        assert!(Parents::new().finish().is_none());
    }

    #[test]
    fn a_large_output_is_kept_as_a_marker_that_counts_it() {
        let big = Output::from_serialize(&"x".repeat(OUTPUT_CAP * 2)).unwrap();
        let len = big.as_json().len();
        let kept = big.capped();
        assert!(
            kept.as_json().len() <= OUTPUT_CAP,
            "{}",
            kept.as_json().len()
        );
        let v: serde_json::Value = serde_json::from_str(kept.as_json()).unwrap();
        assert_eq!(v["truncated"]["bytes"], len);
        let small = Output::from_json("[1,2]").unwrap();
        assert_eq!(small.clone().capped(), small);
    }

    #[test]
    fn a_fan_in_past_the_cap_stays_bounded() {
        let out = Output::from_serialize(&"y".repeat(OUTPUT_CAP - 100)).unwrap();
        let mut p = Parents::new();
        for _ in 0..(PARENTS_CAP / OUTPUT_CAP + 50) {
            p.push("shard", true, &out);
        }
        let json = p.finish();
        assert!(json.as_json().len() <= PARENTS_CAP + 64 * 1024);
        let v: serde_json::Value = serde_json::from_str(json.as_json()).unwrap();
        let last = v["shard"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["truncated"]["kept"], "");
    }

    #[test]
    fn run_if_reads_its_two_values() {
        assert_eq!("always".parse::<RunIf>(), Ok(RunIf::Always));
        assert!("sometimes"
            .parse::<RunIf>()
            .unwrap_err()
            .contains("\"always\""));
        assert_eq!(RunIf::from_code(RunIf::Always.code()), RunIf::Always);
    }
}
