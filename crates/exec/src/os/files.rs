//! What this process may do with a file: access checks (`access`), whether
//! it runs as root, and whole-file locks (`flock`).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

fn access(path: &Path, mode: libc::c_int) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: access reads the NUL-terminated path we pass.
    super::signals::check(unsafe { libc::access(c.as_ptr(), mode) })
}

/// Whether this process may write in `path` (for a directory: create files
/// in it); the reason when it may not.
pub fn may_write(path: &Path) -> io::Result<()> {
    access(path, libc::W_OK)
}

/// Whether this process may execute `path` (for a directory: enter it);
/// the reason when it may not.
pub fn may_execute(path: &Path) -> io::Result<()> {
    access(path, libc::X_OK)
}

/// Whether this process runs as root (its effective user id is 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Takes an exclusive lock on `file` (`flock`, which `fcntl` locks, such as
/// SQLite's, do not touch), without waiting: `Ok(false)` when another open
/// file description holds one. The lock lasts while a descriptor of that
/// description is open.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we borrow; no memory is touched.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}
