//! Waiting for descriptors to be ready (`poll`), on borrowed descriptors.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// What to wait for on a descriptor.
#[derive(Debug, Clone, Copy)]
pub enum Interest {
    /// Something to read (or its end).
    Read,
    /// Room to write (or a reader gone).
    Write,
}

/// One descriptor to wait for, or a place left empty.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PollFd<'fd> {
    raw: libc::pollfd,
    fd: PhantomData<BorrowedFd<'fd>>,
}

impl std::fmt::Debug for PollFd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.raw.fd)
            .field("ready", &self.ready())
            .finish()
    }
}

impl<'fd> PollFd<'fd> {
    /// Waits for `interest` on `fd`.
    pub fn new(fd: BorrowedFd<'fd>, interest: Interest) -> PollFd<'fd> {
        let events = match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        };
        PollFd {
            raw: libc::pollfd {
                fd: fd.as_raw_fd(),
                events,
                revents: 0,
            },
            fd: PhantomData,
        }
    }

    /// A place that waits for nothing (and is never ready).
    pub fn none() -> PollFd<'fd> {
        PollFd {
            raw: libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            },
            fd: PhantomData,
        }
    }

    /// Whether the last [`poll`] found it ready (or at its end, or in error).
    pub fn ready(&self) -> bool {
        self.raw.revents != 0
    }
}

/// Waits until one of `fds` is ready, or `timeout` passes (`None`: no
/// limit; a timeout rounds up to a millisecond). Returns how many are
/// ready, 0 on a timeout. Interrupted waits are taken up again.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| t.as_millis().clamp(1, i32::MAX as u128) as i32);
    loop {
        // SAFETY: `PollFd` is a `pollfd` (repr(transparent)), so `fds` is an
        // array of `fds.len()` of them, borrowed for the call; their
        // descriptors are borrowed for `'fd` (or -1, which poll skips).
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len() as libc::nfds_t,
                ms,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
