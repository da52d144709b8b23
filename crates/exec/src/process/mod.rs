//! `process` mode: attempts run in a pool of child processes, so a panic,
//! an abort, a segfault, an exit, an out-of-memory kill or a hang costs
//! one attempt, never the run.
//!
//! # How it works
//!
//! The pool has slots, one per child process, each with a supervising
//! thread in the engine. A supervisor starts its child (the same
//! executable, in the child role: see [`enter_if_child_with`]), takes
//! batches of attempts from the pool's pending queue, sends them and reads
//! their results; a page of memory they share (`shm`) says at every moment
//! which attempt of the batch is running. When the child dies, that attempt
//! is `crashed` (with the exit code or signal), the batch's attempts that
//! had not started go back to be run elsewhere (as do those that ended but
//! whose results died with the child: they run again), and a new child
//! takes the old one's place. When the running attempt passes its timeout,
//! the child's process group gets SIGTERM, then SIGKILL after a grace, and
//! the attempt is `timed_out`. Children are recycled after a number of
//! jobs or above a resident size. A child dies with the engine (a
//! parent-death signal, and the end of its input pipe).
//!
//! The rooms: `config` (how a pool is started and kept), `pool` (the
//! [`ProcessPool`] handle: the `Executor` calls), `shared` (what the
//! supervisors and the handle share: the pending queue), `slot` (one
//! child's place), `supervisor` (the loop), `start` (spawn and handshake;
//! `spawn` starts the process), `batch` (running a batch), `bury` (a child
//! that is gone), `stop` (ending a child, politely or not); `child` is the
//! child's own side, `protocol` the frames between them.
//!
//! # Protocol: who reports an attempt
//!
//! An attempt is in one place at a time: the pending queue, or the batch of
//! one slot. Whoever takes it out of there, under that place's lock, owns
//! it and does exactly one thing with it: reports it to the sink, gives it
//! back to the front of the pending queue, or returns it to the engine
//! (`cancel`, `take_unstarted`, `cancel_running`).
//!
//! - **A result** from the child: the supervisor removes the attempt from
//!   the slot's batch and reports it. A result for an attempt no longer in
//!   the batch (taken back meanwhile) is dropped.
//! - **Stopping a batch** (`Slot::stop_batch`, by the handle or the
//!   supervisor): the skip bit on the shared page means no further attempt
//!   of the batch starts; those that had not started leave the batch with
//!   whoever stopped it.
//! - **A cancel of a running attempt**: the handle stops the batch, sets
//!   the slot's `cancel` and wakes the supervisor (the wake pipe), which
//!   kills the child once it sees that attempt running; the attempt is
//!   reported `cancelled` by `bury`.
//! - **A timeout**: the supervisor looks at the running attempt's start
//!   time on the page between waits (every tenth of the shortest timeout of
//!   the batch, 1 to 50 ms); past it, the child is ended (SIGTERM, grace,
//!   SIGKILL) and the attempt reported `timed_out` by `bury`.
//! - **A crash** (the child's pipe ends, or it breaks the protocol): `bury`
//!   kills what is left, blames the running attempt (`crashed`), and gives
//!   the rest of the batch back. With nothing running to blame (a child
//!   that dies between attempts), nobody is blamed, three times in a row;
//!   the fourth time the batch's first attempt is, so a child that always
//!   dies cannot loop for ever.
//! - **A child that cannot start**: for want of descriptors, processes or
//!   memory, the batch goes back and the next start waits (a back-off, told
//!   once on standard error); for any other reason, each attempt of the
//!   batch is `crashed` (retried by its policy).
//! - **Recycling**: a child that has run `max_jobs_per_worker` attempts
//!   (it is sent no more than that) or grows above `max_worker_rss` (it
//!   starts nothing more of its batch, the rest goes back) is asked to exit
//!   once its batch is answered, and replaced at the next batch.
//! - **Shutdown**: supervisors finish their batch, then ask their child to
//!   exit (SIGKILL after the grace).
//!
//! Whenever a supervisor ends a child (all of the above), it ends the
//! commands that child started (the slot's page of the reaper's table),
//! before it reports anything: a command never outlives its attempt.
//!
//! **What the supervisor owns**: the child (its process, pipes and frame
//! reader) and the sending of batches; only it writes to the child or
//! reaps it. The handle touches a slot only under the slot's lock and
//! through the shared page and the wake pipe.
//!
//! **Lock order**: the pending queue's lock and a slot's lock are never
//! held together, and the sink is never called with either held.

mod batch;
mod bury;
mod child;
mod config;
mod pool;
pub(crate) mod protocol;
mod shared;
mod shm;
mod slot;
mod spawn;
mod start;
mod stop;
mod supervisor;

pub use child::{enter_if_child_with, is_child, run_child, CHILD_ENV};
pub use config::ProcessConfig;
pub use pool::ProcessPool;
