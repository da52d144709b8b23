//! The file through which a `shell` command reads its job's parents
//! object (the variable `RUNYARD_PARENTS` names it).
//!
//! The file is made unlinked (`tempfile::tempfile`: `O_TMPFILE` where the
//! file system has it, else created and removed at once, mode 0600), so
//! nothing is left in the temporary directory however the attempt or the
//! runner ends, SIGKILL included: its space is freed when the last
//! descriptor closes. The command needs a path, so it is given
//! `/proc/PID/fd/N`, the runner's descriptor of it (PID is the process
//! running the attempt: the engine, or its child process in process mode);
//! opening that path opens the same file afresh, from its start. The
//! attempt holds the [`ParentsFile`] until its command has returned (the
//! command's group is killed then, and by the reaper should the runner
//! die), so the descriptor named in the path is never closed, nor its
//! number reused, while the command may still open it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The environment variable that names the file.
pub const PARENTS_ENV: &str = "RUNYARD_PARENTS";

/// An attempt's parents object in an unlinked file (see the module).
#[derive(Debug)]
pub(crate) struct ParentsFile {
    file: File,
}

impl ParentsFile {
    /// A file holding `json`.
    pub(crate) fn new(json: &str) -> io::Result<ParentsFile> {
        let mut file = tempfile::tempfile()?;
        file.write_all(json.as_bytes())?;
        file.flush()?;
        Ok(ParentsFile { file })
    }

    /// The path a command opens it by.
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }

    /// The file opened afresh for reading from its start (a command's
    /// standard input).
    pub(crate) fn reader(&self) -> io::Result<File> {
        File::open(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}
