//! A claimed job the dispatcher is responsible for, and where its attempt
//! is: waiting for room, with its executor, or started.

use std::sync::Arc;
use std::time::Instant;

use runyard_core::{JobParams, JobSettings, TaskIndex, Tick, Timestamp};
use runyard_queue::Lease;

use super::trace::AttemptSpan;
use crate::lane::Lane;

/// Where a claimed job's attempt is.
#[derive(Debug)]
pub(super) enum Stage {
    /// Claimed and waiting for room in its lane or under its task's limit;
    /// the parameters and the parents object's JSON (`None` without
    /// parents) are held until the attempt is handed over.
    Waiting {
        params: JobParams,
        parents: Option<Arc<str>>,
    },
    /// Handed to its lane's executor, not known to have started. Holds a
    /// running slot.
    Submitted,
    /// Started at this time (the executor said so). Holds a running slot.
    Started { at: Timestamp },
}

/// A claimed job, from its claim to its attempt's end (or its release).
#[derive(Debug)]
pub(super) struct Entry {
    /// The claim: the job and this attempt's number.
    pub(super) lease: Lease,
    pub(super) task: TaskIndex,
    pub(super) lane: Lane,
    pub(super) settings: JobSettings,
    /// When the job became ready to run.
    pub(super) ready_at: Timestamp,
    pub(super) stage: Stage,
    /// Someone asked to cancel the job: its verdict is `cancelled`.
    pub(super) cancel_requested: bool,
    /// For a rate-limited job, when the queue admitted its start: its
    /// attempt starts at once, and its record starts at this time.
    pub(super) admitted_at: Option<Timestamp>,
    /// When the claim was asked for: its lease runs at least a lease from
    /// then, or from the last heartbeat that renewed it.
    pub(super) claimed_at: Instant,
    /// For a job a schedule made: its schedule and tick (boxed: most jobs
    /// have none, and an entry stays small).
    pub(super) schedule: Option<Box<Tick>>,
    /// The attempt's `runyard.attempt` span, when a subscriber wants it.
    pub(super) span: AttemptSpan,
}

impl Entry {
    /// Whether the attempt is with its executor (submitted or started): it
    /// counts against its lane's cap and its task's limit.
    pub(super) fn holds_slot(&self) -> bool {
        !matches!(self.stage, Stage::Waiting { .. })
    }

    /// When the attempt started, if it is known to have.
    pub(super) fn started_at(&self) -> Option<Timestamp> {
        match self.stage {
            Stage::Started { at } => Some(at),
            _ => None,
        }
    }
}
