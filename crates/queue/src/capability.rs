//! What a queue can do beyond the worker protocol: its [`Capabilities`].
//!
//! Every queue drains the same way (the core [`Queue`](crate::Queue)
//! trait). What differs is described here: whether its jobs outlive the
//! process ([`Durability`]), how its outcomes are best written ([`Writes`]),
//! and which job features it keeps ([`Capability`]). A job says what it
//! needs ([`NewJob::needs`](crate::NewJob::needs)); `enqueue` refuses,
//! before anything is written, a job that needs a capability the queue
//! lacks, with a message naming it. A feature a new kind of job brings
//! (dependencies, unique keys, limits, schedules) is a new [`Capability`]
//! variant, a line in `NewJob::needs`, and the backends that keep it add
//! it to what they return.
//!
//! Administration and inspection are not job features: a queue that has
//! them returns them as trait objects ([`Queue::as_admin`](crate::Queue::as_admin),
//! [`Queue::as_inspect`](crate::Queue::as_inspect)).

use std::fmt;

/// A feature a job may need from its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Capability {
    /// Jobs that wait for a run-at in the future ([`NewJob::run_at`](crate::NewJob::run_at)).
    RunAt,
    /// Jobs added at most once per key ([`NewJob::idempotency_key`](crate::NewJob::idempotency_key)).
    IdempotencyKeys,
    /// Jobs that wait for other jobs ([`NewJob::after`](crate::NewJob::after)).
    Dependencies,
    /// Jobs with a unique key ([`NewJob::unique`](crate::NewJob::unique)).
    UniqueJobs,
    /// Jobs under concurrency or rate limits, or placed by a fairness key
    /// ([`NewJob::limits`](crate::NewJob::limits)); a queue that keeps them
    /// also has [`FlowControl`](crate::FlowControl) (stored limits, pausing).
    Limits,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 5] = [
        Capability::RunAt,
        Capability::IdempotencyKeys,
        Capability::Dependencies,
        Capability::UniqueJobs,
        Capability::Limits,
    ];

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::RunAt => "run-at times",
            Capability::IdempotencyKeys => "idempotency keys",
            Capability::Dependencies => "dependencies between jobs",
            Capability::UniqueJobs => "unique keys",
            Capability::Limits => "concurrency and rate limits",
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a queue's jobs outlive the process that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Durability {
    /// They end with the process: it is the only worker, so there is no
    /// other worker to lose, and no heartbeat or rescue on a schedule.
    Process,
    /// They outlive it: workers heartbeat their leases, and rescue those of
    /// workers that stopped.
    Durable,
}

/// How a worker best writes outcomes to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Writes {
    /// Between claims, on the worker's own thread (a file with one writer
    /// at a time, or memory).
    BetweenClaims,
    /// From a thread of their own while the worker claims (a server with a
    /// connection each).
    Concurrent,
}

/// What a queue is: its durability, how it is written, and the job
/// features it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    durability: Durability,
    writes: Writes,
    kept: u32,
}

impl Capabilities {
    /// A queue of this durability and way of writing, keeping no job
    /// feature yet (add them with [`Capabilities::with`]).
    pub const fn new(durability: Durability, writes: Writes) -> Capabilities {
        Capabilities {
            durability,
            writes,
            kept: 0,
        }
    }

    /// The same, also keeping `c`.
    pub fn with(mut self, c: Capability) -> Capabilities {
        self.kept |= c.bit();
        self
    }

    /// The same, keeping every capability this build knows.
    pub fn with_all(self) -> Capabilities {
        Capability::ALL.into_iter().fold(self, Capabilities::with)
    }

    /// The same, without `c`.
    pub fn without(mut self, c: Capability) -> Capabilities {
        self.kept &= !c.bit();
        self
    }

    /// Whether the queue keeps `c`.
    pub fn has(&self, c: Capability) -> bool {
        self.kept & c.bit() != 0
    }

    /// The capabilities it keeps.
    pub fn kept(&self) -> impl Iterator<Item = Capability> + '_ {
        Capability::ALL.into_iter().filter(|c| self.has(*c))
    }

    /// Whether its jobs outlive the process.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// How outcomes are best written.
    pub fn writes(&self) -> Writes {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_kept_one_by_one() {
        let c = Capabilities::new(Durability::Durable, Writes::Concurrent);
        assert_eq!(c.kept().count(), 0);
        let c = c.with(Capability::RunAt);
        assert!(c.has(Capability::RunAt) && !c.has(Capability::IdempotencyKeys));
        let all = c.with_all().without(Capability::RunAt);
        assert_eq!(
            all.kept().collect::<Vec<_>>(),
            [
                Capability::IdempotencyKeys,
                Capability::Dependencies,
                Capability::UniqueJobs,
                Capability::Limits
            ]
        );
        assert_eq!(all.durability(), Durability::Durable);
        assert_eq!(all.writes(), Writes::Concurrent);
    }
}
