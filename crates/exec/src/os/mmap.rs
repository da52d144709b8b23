//! Shared memory mappings of a file (`mmap(MAP_SHARED)`), unmapped as they
//! drop.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// `len` bytes of a file mapped shared and read-write into this process.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of the file `fd` from `offset` (a multiple of the
    /// page size). The mapping outlives the descriptor.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize, offset: usize) -> io::Result<Mapping> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a new mapping of the caller's file, where the kernel
        // picks: nothing of ours is overwritten.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        match NonNull::new(p) {
            Some(ptr) if p != libc::MAP_FAILED => Ok(Mapping { ptr, len }),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Where the mapping starts: page-aligned, valid for `len` bytes while
    /// `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut libc::c_void {
        self.ptr.as_ptr()
    }

    /// Keeps the mapping for the rest of the process: its start, valid for
    /// ever.
    pub(crate) fn leak(self) -> *mut libc::c_void {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `shared` mapped, once; no reference into
        // it outlives `self` (its users borrow it from their owner).
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}
