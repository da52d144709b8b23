//! What a child process gets between fork and exec: descriptors on fixed
//! numbers, a parent-death signal, an address-space limit. Only
//! async-signal-safe calls run there (`dup2`, `prctl`, `setrlimit`), and
//! nothing allocates.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The set-up of a child process before it executes its program.
#[derive(Debug, Default)]
pub(crate) struct ChildSetup {
    /// `(from, to)`: descriptor `from` of the parent becomes `to` in the
    /// child (`dup2`, so `to` is not close-on-exec). The caller keeps each
    /// `from` open until the command is spawned.
    pub(crate) moves: Vec<(RawFd, RawFd)>,
    /// A signal the child gets when the parent's spawning thread exits
    /// (see [`super::set_parent_death_signal`]).
    pub(crate) parent_death_signal: Option<i32>,
    /// A limit on the child's address space, in bytes.
    pub(crate) address_space: Option<u64>,
}

impl ChildSetup {
    /// Makes `cmd` apply this set-up in its child, after the standard
    /// streams are set and before exec.
    pub(crate) fn apply_to(self, cmd: &mut Command) {
        let hook = move || {
            for &(from, to) in &self.moves {
                // SAFETY: dup2 is async-signal-safe and takes integers; the
                // caller keeps `from` open until the spawn.
                if unsafe { libc::dup2(from, to) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(sig) = self.parent_death_signal {
                super::set_parent_death_signal(sig)?;
            }
            if let Some(bytes) = self.address_space {
                super::limit_address_space(bytes)?;
            }
            Ok(())
        };
        // SAFETY: the hook makes only async-signal-safe calls (above), does
        // not allocate (it iterates a vector it owns) and touches no lock.
        unsafe { cmd.pre_exec(hook) };
    }
}
