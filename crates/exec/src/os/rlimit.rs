//! Resource limits (`getrlimit`, `setrlimit`): how many files and processes
//! this process may have, and an address-space limit for a child process.

use std::io;

/// A limited resource.
#[derive(Debug, Clone, Copy)]
pub enum Resource {
    /// Open descriptors (`RLIMIT_NOFILE`).
    OpenFiles,
    /// Processes and threads of this user (`RLIMIT_NPROC`).
    Processes,
}

/// A resource's soft limit, `None` when unlimited (or unknown).
pub fn soft_limit(resource: Resource) -> Option<u64> {
    let resource = match resource {
        Resource::OpenFiles => libc::RLIMIT_NOFILE,
        Resource::Processes => libc::RLIMIT_NPROC,
    };
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(r.rlim_cur)
}

/// Limits this process's address space to `bytes` (`RLIMIT_AS`, soft and
/// hard): an allocation past it fails. Async-signal-safe, for the child
/// side of a fork.
pub fn limit_address_space(bytes: u64) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; nothing else is touched.
    super::signals::check(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) })
}
