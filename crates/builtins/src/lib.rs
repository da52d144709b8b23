//! runyard's built-in tasks, which make the `runyard` binary useful without
//! writing Rust: `cpu`, `sleep` (and `io`, its original name), `fail`,
//! `noop`, `panic`, `shell` and `http`.
//!
//! They are not registered at link time: a binary adds them with
//! [`tasks`], so a user's own binary is free to define tasks of those names.
#![forbid(unsafe_code)]

mod cpu;
mod fail;
mod http;
mod parents_file;
mod shell;
mod sleep;

use runyard::{Context, Task, TaskDef, TaskError};
use serde::{Deserialize, Serialize};

pub use cpu::{hash_chain, splitmix64, Cpu, CpuParams};
pub use fail::{Fail, FailParams};
pub use http::{Expect, Http, HttpOutput, HttpParams};
pub use parents_file::PARENTS_ENV;
pub use shell::{Cmd, Shell, ShellOutput, ShellParams, SECRET_ENV};
pub use sleep::{Sleep, SleepParams};

/// Every built-in task.
pub fn tasks() -> Vec<TaskDef> {
    vec![
        TaskDef::from_task(Cpu),
        TaskDef::hybrid(Sleep).with_name("sleep"),
        TaskDef::hybrid(Sleep)
            .with_name("io")
            .with_origin("runyard_builtins::Sleep (as `io`)"),
        TaskDef::from_task(Fail),
        TaskDef::from_task(Noop),
        TaskDef::from_task(Panic),
        TaskDef::from_task(Shell),
        TaskDef::from_async(Http),
    ]
}

/// `noop`: does nothing, successfully. For measuring the engine itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl Task for Noop {
    const NAME: &'static str = "noop";
    const DESCRIPTION: &'static str =
        "Does nothing, successfully (for measuring the engine itself)";
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Parameters of `panic`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields, default)]
pub struct PanicParams {
    /// The panic message.
    pub message: String,
}

impl Default for PanicParams {
    fn default() -> PanicParams {
        PanicParams {
            message: "the `panic` task panicked, as asked".to_string(),
        }
    }
}

/// `panic`: panics (to see failure containment at work).
#[derive(Debug, Clone, Copy, Default)]
pub struct Panic;

impl Task for Panic {
    const NAME: &'static str = "panic";
    const DESCRIPTION: &'static str =
        "Panics with a message (to see a panic contained as an attempt outcome)";
    type Params = PanicParams;
    type Output = ();

    fn run(&self, p: PanicParams, _: &Context) -> Result<(), TaskError> {
        panic!("{}", p.message)
    }
}
