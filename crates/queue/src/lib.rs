//! runyard's queues: the [`Queue`] trait every backend implements, the
//! [`MemoryQueue`], and (feature `conformance`) the suite every backend must
//! pass.
#![forbid(unsafe_code)]

mod clock;
mod error;
mod memory;
mod queue;
pub mod stored;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{QueueError, QueueErrorKind};
pub use memory::MemoryQueue;
pub use queue::{host_name, LiveWorker, NameTaken, WorkerInfo};
pub use queue::{
    lost_attempt, lost_attempt_message, CancelResult, Claimed, Completion, Counts, Enqueued,
    Fenced, HeartbeatReply, Lease, ListFilter, NewJob, Queue, Rescue, TaskName, TaskNames, Verdict,
    Waker, WakerSlot,
};
