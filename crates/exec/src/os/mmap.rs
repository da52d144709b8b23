//! Shared memory mappings of a file (`mmap(MAP_SHARED)`), unmapped as they
//! drop.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU64};

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

    /// The mapping as 64-bit atomics, the only way it is read or written
    /// (here and in the other processes that map the file).
    pub(crate) fn u64s(&self) -> &[AtomicU64] {
        // SAFETY: `len` bytes mapped while `self` lives, page-aligned (more
        // than an AtomicU64 needs); an AtomicU64 has the layout of a u64,
        // for which every bit pattern is valid, and is only accessed
        // atomically, so another process writing the file races nothing.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / 8) }
    }

    /// Keeps the mapping for the rest of the process, as 32-bit atomics
    /// (see [`Mapping::u64s`]).
    pub(crate) fn leak_i32s(self) -> &'static [AtomicI32] {
        let (p, len) = (self.ptr.as_ptr(), self.len);
        std::mem::forget(self);
        // SAFETY: as in `u64s`, for i32s; never unmapped (forgotten above),
        // so valid for the rest of the process.
        unsafe { std::slice::from_raw_parts(p.cast(), len / 4) }
    }
}

// SAFETY: the mapping is reachable only as atomics (`u64s`, `leak_i32s`),
// which any thread may use.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `shared` mapped, once; no reference into
        // it outlives `self` (`u64s` borrows it).
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}
