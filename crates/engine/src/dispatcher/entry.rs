//! A claimed job the dispatcher is responsible for, and where its attempt
//! is: waiting for room, with its executor, or started.
//!
//! An entry is held for every claimed job until its attempt's end, so it
//! is kept small (a hundred thousand async attempts in flight hold as many):
//! the job's settings are shared with the other jobs claimed with the same
//! ones, and what few jobs have (parents, an admitted start) is boxed apart.

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
    /// the parameters (and in [`Rare::parents`] the parents object's JSON)
    /// are held until the attempt is handed over.
    Waiting { params: JobParams },
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
    /// The job's settings, shared by the entries of jobs claimed with the
    /// same ones (see `Router`).
    pub(super) settings: Arc<JobSettings>,
    /// When the job became ready to run.
    pub(super) ready_at: Timestamp,
    pub(super) stage: Stage,
    /// Someone asked to cancel the job: its verdict is `cancelled`.
    pub(super) cancel_requested: bool,
    /// When the claim was asked for: its lease runs at least a lease from
    /// then, or from the last heartbeat that renewed it.
    pub(super) claimed_at: Instant,
    /// For a job a schedule made: its schedule and tick (boxed: most jobs
    /// have none, and an entry stays small).
    pub(super) schedule: Option<Box<Tick>>,
    /// The attempt's `runyard.attempt` span, when a subscriber wants it.
    pub(super) span: AttemptSpan,
    /// What few jobs have; `None` for most.
    pub(super) rare: Option<Box<Rare>>,
}

/// What an entry holds for few jobs (boxed, so that the others' entries
/// stay small).
#[derive(Debug, Default)]
pub(super) struct Rare {
    /// The parents object's JSON, until the attempt is handed over (and
    /// again should its executor hand it back).
    pub(super) parents: Option<Arc<str>>,
    /// For a rate-limited job, when the queue admitted its start: its
    /// attempt starts at once, and its record starts at this time.
    pub(super) admitted_at: Option<Timestamp>,
}

impl Entry {
    /// Whether the attempt is with its executor (submitted or started): it
    /// counts against its lane's cap and its task's limit.
    pub(super) fn holds_slot(&self) -> bool {
        !matches!(self.stage, Stage::Waiting { .. })
    }

    /// For a rate-limited job, when the queue admitted its start.
    pub(super) fn admitted_at(&self) -> Option<Timestamp> {
        self.rare.as_ref().and_then(|r| r.admitted_at)
    }

    /// Takes the parents object's JSON, to hand it over with the attempt.
    pub(super) fn take_parents(&mut self) -> Option<Arc<str>> {
        self.rare.as_mut().and_then(|r| r.parents.take())
    }

    /// When the attempt started, if it is known to have.
    pub(super) fn started_at(&self) -> Option<Timestamp> {
        match self.stage {
            Stage::Started { at } => Some(at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Entry;

    /// A hundred thousand async attempts in flight hold as many entries:
    /// an entry's size is part of every attempt's cost (it was 208 bytes
    /// with the settings held whole).
    #[test]
    fn an_entry_stays_small() {
        let size = std::mem::size_of::<Entry>();
        assert!(size <= 112, "an entry takes {size} bytes");
    }
}
