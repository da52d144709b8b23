//! The `runyard` binary end to end: every exit code, the error messages,
//! the report formats, signals, and DESIGN.md's guarantees as a user meets
//! them on the command line.

mod bench;
mod closed;
mod errors;
mod exec;
mod exit_codes;
mod flow;
mod guarantees;
mod jobfile;
mod limits;
mod logging;
mod prune;
mod report;
mod schedules;
mod signals;
#[path = "../support/mod.rs"]
mod support;
mod tasks;
mod util;
mod workflow;
mod writes;
