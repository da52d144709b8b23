//! The operating-system calls of runyard, one module per concern, each a
//! safe function with its `unsafe` inside (and a `// SAFETY:` note on each
//! block): the rest of runyard, in this crate and the others, calls these
//! instead of `libc`.
//!
//! - `signals`: signal names, [`kill`], [`ignore_signal`];
//! - `status`: exit statuses in words ([`describe_exit`], [`exit_parts`]);
//! - `process_group`: signalling and ending a process group;
//! - `wait`: a child's exit without reaping it (and a pidfd on Linux);
//! - `procfs`: whether a process runs, its resident size (`/proc`);
//! - `fd`: pipes, descriptor flags, the descriptors a child is handed;
//! - `poll`: waiting for descriptors;
//! - `memfd` and `mmap`: the shared pages of process mode and the reaper;
//! - `rlimit`: resource limits;
//! - `death`: the parent-death signal, the parent's id, work at exit;
//! - `files`: access checks, root, whole-file locks;
//! - `child_setup`: what a child process gets between fork and exec;
//! - `reaper_process`: the reaper's own process (see `crate::reaper`).
//!
//! Unix throughout. What is Linux's alone is marked
//! `#[cfg(target_os = "linux")]` and has a fallback elsewhere, said on each:
//! no pidfd (callers look at the child from time to time), no parent-death
//! signal (a child process ends at its next read of a closed pipe), no
//! `/proc` (no resident size: `max_worker_rss` never recycles), `pipe`
//! then close-on-exec instead of `pipe2`, and no memfd, so process mode and
//! the reaper refuse to start there, saying why.

mod child_setup;
mod death;
mod fd;
mod files;
mod memfd;
mod mmap;
mod poll;
mod process_group;
mod procfs;
mod reaper_process;
mod rlimit;
mod signals;
mod status;
mod wait;

pub(crate) use child_setup::ChildSetup;
pub use death::{at_exit, parent_pid, set_parent_death_signal};
pub use fd::{bytes_readable, dup_error, set_nonblocking};
pub(crate) use fd::{close_inherited_on_exec, fd_above, pipe, take_inherited};
pub use files::{is_root, may_execute, may_write, try_lock_exclusive};
pub(crate) use memfd::{memfd, set_len};
pub(crate) use mmap::Mapping;
pub use poll::{poll, Interest, PollFd};
pub use process_group::{kill_group, stop_group};
pub use procfs::{is_running, rss_bytes};
pub(crate) use reaper_process::fork_reaper;
pub use rlimit::{limit_address_space, soft_limit, Resource};
pub use signals::{ignore_signal, kill, signal_name, signal_number};
pub use status::{describe_exit, exit_parts};
pub use wait::{child_exited, pidfd_open};
