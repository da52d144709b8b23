//! The reaper: no command's process group outlives the runner.
//!
//! A command that a task starts with [`CommandGroup`](crate::CommandGroup)
//! (the `shell` task does) runs in a process group of its own, so that a
//! timeout can end it whole. But a group does not die with the process that
//! started it: kill the runner with SIGKILL and every command it had running
//! lives on, and a resume would start the same commands again beside them.
//! A parent-death signal reaches only the direct child, never what
//! `sh -c 'a | b'` starts. So each runner has a reaper: a small process that
//! knows the groups of the commands the runner and its child processes
//! have running, and kills every one of them once the runner is gone.
//!
//! # Protocol
//!
//! **The table** is a memfd of pages of 1024 slots (`i32`): `0` free, `-1`
//! taken (a command is being started), any other value the id of a live
//! command's process group. Only the runner adds pages (it grows the
//! memfd). It registers its own commands in pages it keeps, and lends one
//! page to each slot of a process pool: the child processes of that slot
//! map it (descriptor 7) and write only there, and the pool's supervisor
//! reads it when it ends a child.
//!
//! **A command's slot**: the starting thread takes a free slot (compare and
//! swap `0 → -1`) before it starts the command, and stores the group's id
//! (the leader's pid) there as soon as the spawn returns. When the leader
//! has exited, still unreaped (so neither its id nor its group's can be
//! reused), what is left of the group gets SIGKILL, the slot is cleared,
//! and only then is the leader reaped. So a slot never names a group whose
//! id may have gone to another process while this process is alive.
//!
//! **The life pipe**: the reaper holds its read end. The runner holds the
//! only write end (close-on-exec: commands do not inherit it), and so does
//! every child process (descriptor 6, close-on-exec there too). The
//! reaper blocks reading the pipe, which ends (end of file) only when every
//! holder is gone: the runner, and its child processes, which die with it
//! (a parent-death signal). A child process cannot register a group after
//! the reaper's last look, since it holds the pipe until it dies. The
//! reaper then reads the whole table and sends SIGKILL to every group it
//! names, and exits. (A child that the runner's own code forks without
//! `exec` holds the pipe too: the reaper then waits for it as well.)
//!
//! **The reaper process** (`os::fork_reaper`) is forked from the runner, which has threads: the
//! child makes only async-signal-safe calls (`fork`, `setpgid`,
//! `sigaction`, `prctl`, `chdir`, `close_range`/`close`, `read`, `lseek`,
//! `kill`, `_exit`) on memory it owns (a buffer on its stack). It forks
//! once more and the middle process exits, so the reaper is no child of
//! the runner (nothing there has to reap it). It has a process group of its
//! own (Ctrl-C at the terminal, or a signal to the runner's group, does not
//! reach it), ignores the signals that end a process by default (SIGKILL
//! still does), keeps no descriptor but its two, and is named
//! `runyard-reaper`. It starts with the runner's memory as it was
//! (copy-on-write: the runner's later changes make copies), so it is
//! best started early ([`start_reaper`]: the CLI does before it reads any
//! job), and is otherwise started at the first need.
//!
//! **A child process's commands**: when a pool's supervisor ends a child
//! (timeout, cancel, crash, recycling), it ends the commands of the
//! child's page with it (SIGTERM with the child's, SIGKILL to what is
//! left after the grace) and clears the page, before it reports the
//! attempt: a retry never runs beside the command of the attempt before.
//!
//! **Out of reach**: a process that leaves its group (`setsid`, `setpgid`,
//! the job control of an interactive shell), and a command whose runner is
//! killed in the microseconds between the command's `exec` and the store of
//! its id (the spawn returns only once the command runs).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::os;

/// Slots in a page of the table.
const SLOTS: usize = 1024;
/// Bytes in a page of the table.
const PAGE: usize = SLOTS * 4;
const FREE: i32 = 0;
const TAKEN: i32 = -1;

/// Where a child process finds the life pipe's write end.
pub(crate) const CHILD_LIFE_FD: RawFd = 6;
/// Where a child process finds the table.
pub(crate) const CHILD_TABLE_FD: RawFd = 7;

/// A page of the table, mapped here for the rest of the process.
pub(crate) struct Page {
    /// SLOTS slots.
    slots: &'static [AtomicI32],
}

impl Page {
    /// The groups the page names now.
    fn groups(&self) -> impl Iterator<Item = (&AtomicI32, u32)> + '_ {
        self.slots.iter().filter_map(|s| {
            let v = s.load(Ordering::SeqCst);
            (v > 0).then_some((s, v as u32))
        })
    }
}

/// This process's side of the table.
struct Table {
    mem: OwnedFd,
    /// Never written: it closes with this process, which is what the
    /// reaper waits for.
    life: OwnedFd,
    /// Whether this process may add pages: the runner may; a child process
    /// registers only in the page it was lent.
    grows: bool,
    pages: Mutex<Pages>,
}

#[derive(Default)]
struct Pages {
    /// Where this process registers its own commands.
    own: Vec<&'static Page>,
    /// Pages given back by a pool, to lend again.
    spare: Vec<(u32, &'static Page)>,
    /// Pages in the memfd.
    count: u32,
}

static TABLE: OnceLock<Table> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts this process's reaper now, if it has none yet (it is otherwise
/// started when the first command is, which is also fine). Early, its copy
/// of this process's memory is small: see the module docs.
pub fn start_reaper() -> io::Result<()> {
    table().map(|_| ())
}

fn table() -> io::Result<&'static Table> {
    if let Some(t) = TABLE.get() {
        return Ok(t);
    }
    let _starting = lock(&STARTING);
    if let Some(t) = TABLE.get() {
        return Ok(t);
    }
    let t = Table::start().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start the process-group reaper: {e}"),
        )
    })?;
    Ok(TABLE.get_or_init(|| t))
}

impl Table {
    /// A table and a reaper watching it.
    fn start() -> io::Result<Table> {
        // Above the descriptors a child process is handed, so that moving
        // them there in a new child never overwrites one with the other.
        let mem = os::fd_above(os::memfd(c"runyard-groups", 0)?, 10)?;
        let (r, w) = os::pipe()?;
        let (r, life) = (os::fd_above(r, 10)?, os::fd_above(w, 10)?);
        os::fork_reaper(r.as_fd(), mem.as_fd())?;
        drop(r);
        Ok(Table {
            mem,
            life,
            grows: true,
            pages: Mutex::new(Pages::default()),
        })
    }

    /// Adds a page to the memfd, mapped here.
    fn grow(&self, pages: &mut Pages) -> io::Result<(u32, &'static Page)> {
        if !self.grows {
            return Err(io::Error::other(format!(
                "this worker process has {SLOTS} commands running at once, the most it can keep track of"
            )));
        }
        let index = pages.count;
        let len = (index as usize + 1) * PAGE;
        // Only this process sizes the memfd.
        os::set_len(&self.mem, len as u64)?;
        pages.count += 1;
        Ok((index, map_page(self.mem.as_fd(), index)?))
    }

    /// Takes a free slot, in a new page if every page is full.
    fn take_slot(&self) -> io::Result<&'static AtomicI32> {
        let mut pages = lock(&self.pages);
        for page in &pages.own {
            if let Some(s) = page.slots.iter().find(|s| {
                s.compare_exchange(FREE, TAKEN, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            }) {
                return Ok(s);
            }
        }
        let page = match pages.spare.pop() {
            Some((_, p)) => p,
            None => self.grow(&mut pages)?.1,
        };
        pages.own.push(page);
        page.slots[0].store(TAKEN, Ordering::SeqCst);
        Ok(&page.slots[0])
    }
}

/// Maps page `index` of the table for the rest of the process (pages are
/// few, and never unmapped: a slot may be in use until the process ends).
fn map_page(mem: BorrowedFd<'_>, index: u32) -> io::Result<&'static Page> {
    let slots = os::Mapping::shared(mem, PAGE, index as usize * PAGE)?.leak_i32s();
    Ok(Box::leak(Box::new(Page { slots })))
}

/// A command's slot in the table: taken before the command starts, set to
/// its group once it runs, cleared when dropped (once the group is gone).
#[derive(Debug)]
pub(crate) struct Entry {
    slot: &'static AtomicI32,
}

/// Takes a slot for a command about to start, starting the reaper if this
/// process has none yet.
pub(crate) fn register() -> io::Result<Entry> {
    Ok(Entry {
        slot: table()?.take_slot()?,
    })
}

impl Entry {
    /// The command runs, as the leader of group `pgid`.
    pub(crate) fn set(&self, pgid: u32) {
        self.slot.store(pgid as i32, Ordering::SeqCst);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.slot.store(FREE, Ordering::SeqCst);
    }
}

/// A page lent to a slot of a process pool, for the commands of its child
/// processes.
pub(crate) struct Loan {
    index: u32,
    page: &'static Page,
}

impl std::fmt::Debug for Loan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan").field("index", &self.index).finish()
    }
}

/// A page for a slot of a process pool (in the runner).
pub(crate) fn lend() -> io::Result<Loan> {
    let t = table()?;
    let mut pages = lock(&t.pages);
    let (index, page) = match pages.spare.pop() {
        Some(p) => p,
        None => t.grow(&mut pages)?,
    };
    Ok(Loan { index, page })
}

/// The descriptors a child process is handed (the life pipe's write end
/// and the table), when this process has a reaper.
pub(crate) fn handoff() -> Option<(RawFd, RawFd)> {
    TABLE.get().map(|t| (t.life.as_raw_fd(), t.mem.as_raw_fd()))
}

impl Loan {
    /// The page's number, for the child to map.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Sends `sig` to every group of the page.
    pub(crate) fn signal_all(&self, sig: i32) {
        for (_, pgid) in self.page.groups() {
            let _ = os::kill_group(pgid, sig);
        }
    }

    /// Whether the leader of a group of the page still runs. A group whose
    /// leader has ended is ended now (SIGKILL to what is left of it) and
    /// cleared. For when the child that wrote there is gone.
    pub(crate) fn any_running(&self) -> bool {
        let mut running = false;
        for (slot, pgid) in self.page.groups() {
            if os::is_running(pgid) {
                running = true;
            } else {
                let _ = os::kill_group(pgid, libc::SIGKILL);
                slot.store(FREE, Ordering::SeqCst);
            }
        }
        running
    }

    /// SIGKILL to every group of the page, and the page cleared. For when
    /// the child that wrote there is gone.
    pub(crate) fn kill_all(&self) {
        for (slot, pgid) in self.page.groups() {
            let _ = os::kill_group(pgid, libc::SIGKILL);
            slot.store(FREE, Ordering::SeqCst);
        }
        for s in self.page.slots {
            s.store(FREE, Ordering::SeqCst);
        }
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        self.kill_all();
        if let Some(t) = TABLE.get() {
            lock(&t.pages).spare.push((self.index, self.page));
        }
    }
}

/// In a child process: registers this process's commands in page `index`
/// of the table its engine handed it (descriptors 6 and 7), so that the
/// engine's reaper and the child's supervisor know them.
pub(crate) fn adopt(index: u32) -> io::Result<()> {
    let life = os::take_inherited(CHILD_LIFE_FD)?;
    let mem = os::take_inherited(CHILD_TABLE_FD)?;
    let page = map_page(mem.as_fd(), index)?;
    let t = Table {
        mem,
        life,
        grows: false,
        pages: Mutex::new(Pages {
            own: vec![page],
            ..Pages::default()
        }),
    };
    TABLE
        .set(t)
        .map_err(|_| io::Error::other("this process already has a reaper"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_once_and_freed_when_dropped() {
        let a = register().unwrap();
        let b = register().unwrap();
        assert!(!std::ptr::eq(a.slot, b.slot));
        // No process has this id (pids stay below 2^22): should this test
        // die here, the reaper signals nobody.
        let nobody = 0x7fff_fff0;
        a.set(nobody);
        assert_eq!(a.slot.load(Ordering::SeqCst), nobody as i32);
        assert_eq!(b.slot.load(Ordering::SeqCst), TAKEN);
        let slot = a.slot;
        drop(a);
        assert_eq!(slot.load(Ordering::SeqCst), FREE);
    }

    #[test]
    fn a_lent_page_is_cleared_and_lent_again() {
        let loan = lend().unwrap();
        // A group that does not exist (pids stay below 2^22).
        loan.page.slots[3].store(i32::MAX, Ordering::SeqCst);
        assert!(!loan.any_running());
        assert_eq!(loan.page.slots[3].load(Ordering::SeqCst), FREE);
        loan.page.slots[5].store(i32::MAX, Ordering::SeqCst);
        let index = loan.index();
        drop(loan);
        let again = lend().unwrap();
        assert_eq!(again.index(), index, "the spare page is lent again");
        assert!(again.page.groups().next().is_none(), "and it is clear");
    }
}
