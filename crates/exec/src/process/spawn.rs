//! Starting a child process: the protocol's pipes on descriptors 3 and 4,
//! the shared page on 5, the reaper's life pipe and table on 6 and 7, its
//! own process group, a parent-death signal, an optional memory limit.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::child::CHILD_ENV;
use crate::os::{self, ChildSetup};
use crate::reaper::{CHILD_LIFE_FD, CHILD_TABLE_FD};

/// A pipe's ends, moved above the descriptors a child will use.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = os::pipe()?;
    Ok((os::fd_above(r, 10)?, os::fd_above(w, 10)?))
}

/// A running child process and the engine's ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) to_child: File,
    pub(crate) from_child: File,
}

/// Starts `program args` as a child process, handing it `shm` as descriptor 5,
/// and `groups` (the reaper's life pipe and table) as 6 and 7.
pub(crate) fn spawn(
    program: &PathBuf,
    args: &[OsString],
    memory_limit: Option<u64>,
    shm: RawFd,
    groups: Option<(RawFd, RawFd)>,
) -> io::Result<Spawned> {
    let (req_r, req_w) = pipe()?;
    let (resp_r, resp_w) = pipe()?;
    let (req_r_fd, resp_w_fd) = (req_r.as_raw_fd(), resp_w.as_raw_fd());
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(CHILD_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut moves = vec![(req_r_fd, 3), (resp_w_fd, 4), (shm, 5)];
    if let Some((life, table)) = groups {
        moves.extend([(life, CHILD_LIFE_FD), (table, CHILD_TABLE_FD)]);
    }
    // A task's prints go to the engine's standard error, never to its
    // standard output (which may carry a report).
    moves.push((2, 1));
    ChildSetup {
        moves,
        // The child process dies with the engine, even when the engine is
        // killed.
        parent_death_signal: Some(libc::SIGKILL),
        address_space: memory_limit,
    }
    .apply_to(&mut cmd);
    let child = cmd.spawn()?;
    // The child has its copies of `req_r` and `resp_w`, which close here:
    // the engine keeps only its own ends.
    Ok(Spawned {
        child,
        to_child: File::from(req_w),
        from_child: File::from(resp_r),
    })
}
