//! Anonymous shared files (`memfd_create`): the pages process mode shares
//! with its child processes, and the reaper's table. Linux's; elsewhere
//! [`memfd`] refuses with `Unsupported`, so process mode and the reaper
//! refuse to start (and say why) instead of running without them.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

/// A new anonymous file of `len` zero bytes, close-on-exec, named `name`
/// (a name for `/proc/PID/fd`, not a path).
#[cfg(target_os = "linux")]
pub(crate) fn memfd(name: &CStr, len: u64) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and flags; the result is checked.
    let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, ours alone.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.set_len(len)?;
    Ok(OwnedFd::from(file))
}

/// No anonymous shared files here: always `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn memfd(name: &CStr, _len: u64) -> io::Result<OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{name:?}: process mode and the reaper need Linux (memfd_create)"),
    ))
}

/// Sets the size of an anonymous file (new bytes read as zeros).
pub(crate) fn set_len(fd: &OwnedFd, len: u64) -> io::Result<()> {
    File::from(fd.try_clone()?).set_len(len)
}
