//! The engine's `tracing` targets (docs/tracing.md names every span, event
//! and field).
//!
//! - [`ATTEMPT`]: a `runyard.attempt` span per claimed attempt and the
//!   events of its turns (see `dispatcher::trace`).
//! - [`ENGINE`]: the engine's own messages (an executor that cannot start,
//!   leases given up, schedules that cannot be fired), which were lines on
//!   standard error; a program that installs no subscriber sees none of
//!   them.

/// The target of attempt spans and job events.
pub(crate) const ATTEMPT: &str = "runyard::attempt";

/// The target of the engine's own messages.
pub(crate) const ENGINE: &str = "runyard::engine";
