//! runyard's queues: the core [`Queue`] trait every backend implements (the
//! worker protocol), the capability traits a backend may add ([`Admin`],
//! [`Inspect`]) and the job features it may keep ([`Capabilities`]), the
//! [`MemoryQueue`], and (feature `conformance`) the suite every backend must
//! pass.
#![forbid(unsafe_code)]

mod admin;
mod capability;
mod clock;
mod counts;
mod error;
mod events;
mod forward;
mod inspect;
mod limits;
mod memory;
mod queue;
mod schedules;
pub mod stored;
mod submit;
mod workers;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use admin::{Admin, CancelResult, Cancelled, Deleted};
pub use capability::{Capabilities, Capability, Durability, Writes};
pub use clock::{Clock, ManualClock, SystemClock};
pub use counts::Counts;
pub use error::{QueueError, QueueErrorKind};
pub use events::{stored_event, AdminEvent, EventSource, NewEvent};
pub use inspect::{
    count_finished, finished_from_rows, minute_of, outcome_rank, FinishedCount, Inspect,
    ListFilter, MINUTE_US,
};
pub use limits::{FlowControl, Holds, LimitChange, Paused};
pub use memory::MemoryQueue;
pub use queue::{
    admit, lost_attempt, lost_attempt_message, Cascade, Claimed, Completion, Enqueued, Fenced,
    HeartbeatReply, Lease, NewJob, Queue, Recorded, Rescue, Rescued, Submit, TaskName, TaskNames,
    Verdict, Waker, WakerSlot,
};
pub use schedules::{
    check_schedule, decode_jobs, encode_jobs, submission_at, FireReport, Fired, Put, ScheduleDef,
    ScheduleInfo, Schedules,
};
pub use submit::{LazySubmit, SubmitThread};
pub use workers::{host_name, LiveWorker, NameTaken, PublishedTask, WorkerInfo};

/// The time type of [`Queue`]'s methods, for [`forward_queue!`].
#[doc(hidden)]
pub use runyard_core::Timestamp as __Timestamp;
