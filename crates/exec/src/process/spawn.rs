//! Starting a worker process: the protocol's pipes on descriptors 3 and 4,
//! its own process group, a parent-death signal, an optional memory limit.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::child::WORKER_ENV;
use crate::os;

/// A pipe's ends, moved above the descriptors a child will use.
fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let high = |fd: RawFd| -> io::Result<RawFd> {
        // SAFETY: duplicating a descriptor we own to one >= 10, close-on-exec.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        // SAFETY: closing the original, which nothing else uses.
        unsafe { libc::close(fd) };
        if h < 0 {
            Err(os::dup_error())
        } else {
            Ok(h)
        }
    };
    Ok((high(fds[0])?, high(fds[1])?))
}

/// A running worker process and the engine's ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) to_worker: File,
    pub(crate) from_worker: File,
}

/// Starts `program args` as a worker, handing it `shm` as descriptor 5.
pub(crate) fn spawn(
    program: &PathBuf,
    args: &[OsString],
    memory_limit: Option<u64>,
    shm: RawFd,
) -> io::Result<Spawned> {
    let (req_r, req_w) = pipe()?;
    let (resp_r, resp_w) = pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(WORKER_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    let limit = memory_limit;
    // SAFETY: only async-signal-safe calls (dup2, prctl, setrlimit) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(req_r, 3) < 0 || libc::dup2(resp_w, 4) < 0 || libc::dup2(shm, 5) < 0 {
                return Err(io::Error::last_os_error());
            }
            // A task's prints go to the engine's standard error, never to
            // its standard output (which may carry a report).
            if libc::dup2(2, 1) < 0 {
                return Err(io::Error::last_os_error());
            }
            // The worker dies with the engine, even when the engine is killed.
            os::set_parent_death_signal(libc::SIGKILL)?;
            if let Some(bytes) = limit {
                os::limit_address_space(bytes)?;
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // SAFETY: the child has its copies; the engine keeps only its own ends.
    unsafe {
        libc::close(req_r);
        libc::close(resp_w);
    }
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: closing our ends, which nothing else owns.
            unsafe {
                libc::close(req_w);
                libc::close(resp_r);
            }
            return Err(e);
        }
    };
    // SAFETY: these descriptors are ours alone from here on.
    let (to_worker, from_worker) = unsafe { (File::from_raw_fd(req_w), File::from_raw_fd(resp_r)) };
    Ok(Spawned {
        child,
        to_worker,
        from_worker,
    })
}
