//! Lanes: which executor runs a job's attempts, from the mode, the task's
//! kind and whether isolation was asked for.

use std::fmt;

use runyard_core::{Mode, TaskDef, TaskKind};
use thiserror::Error;

/// Where an attempt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// The thread pool (`cpu` tasks; every sync task in `thread` mode).
    Cpu,
    /// The elastic blocking pool (`blocking` tasks; sync tasks in `async` mode).
    Blocking,
    /// tokio (`async` tasks).
    Async,
    /// Worker processes (`process` mode, or isolation asked for).
    Process,
}

impl Lane {
    /// Every lane.
    pub(crate) const ALL: [Lane; 4] = [Lane::Cpu, Lane::Blocking, Lane::Async, Lane::Process];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in messages.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lane::Cpu => "thread pool",
            Lane::Blocking => "blocking pool",
            Lane::Async => "async runtime",
            Lane::Process => "worker processes",
        }
    }

    /// The execution mode's name, for tracing fields: `thread`,
    /// `blocking`, `async` or `process`.
    pub(crate) fn mode(self) -> &'static str {
        match self {
            Lane::Cpu => "thread",
            Lane::Blocking => "blocking",
            Lane::Async => "async",
            Lane::Process => "process",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task that cannot run in the mode asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("task `{task}` cannot run in {mode} mode: {reason}")]
pub struct ModeRefused {
    /// The task.
    pub task: String,
    /// The mode.
    pub mode: Mode,
    /// Why, and what would work.
    pub reason: String,
}

/// The lane for a job of `task` in `mode`, with or without isolation.
///
/// | mode | `cpu` task | `blocking` task | `async` task |
/// |---|---|---|---|
/// | `auto` | thread pool | blocking pool | tokio |
/// | `thread` | thread pool | thread pool | refused (unless it has a sync body) |
/// | `async` | blocking pool | blocking pool | tokio |
/// | `process` | worker processes | worker processes | refused (unless it has a sync body) |
///
/// In `auto` mode, a task or job that asks for isolation runs in worker
/// processes. A task with both bodies (the built-in `sleep`) is `async`
/// and runs its sync body where threads or processes are asked for.
pub(crate) fn lane_for(mode: Mode, task: &TaskDef, isolate: bool) -> Result<Lane, ModeRefused> {
    let refuse = |reason: &str| ModeRefused {
        task: task.name().to_string(),
        mode,
        reason: reason.to_string(),
    };
    match mode {
        Mode::Thread if task.has_sync_body() => Ok(Lane::Cpu),
        Mode::Thread => Err(refuse(
            "it is an async task, which runs in `Mode::Async` or `Mode::Auto`",
        )),
        Mode::Process if task.has_sync_body() => Ok(Lane::Process),
        Mode::Process => Err(refuse(
            "it is an async task and worker processes run sync tasks; it runs in `Mode::Async` \
             or `Mode::Auto`",
        )),
        Mode::Async if task.has_async_body() => Ok(Lane::Async),
        Mode::Async => Ok(Lane::Blocking),
        Mode::Auto if isolate && task.has_sync_body() => Ok(Lane::Process),
        Mode::Auto if isolate => Err(ModeRefused {
            mode: Mode::Process,
            ..refuse("it is an async task and cannot be isolated in a worker process")
        }),
        Mode::Auto => Ok(match task.kind() {
            TaskKind::Cpu => Lane::Cpu,
            TaskKind::Blocking => Lane::Blocking,
            TaskKind::Async if task.has_async_body() => Lane::Async,
            TaskKind::Async => Lane::Blocking,
        }),
    }
}
