//! Where a command's output waits until it is printed.
//!
//! Each attempt writes the command's standard output and standard error to
//! two files of its own, made unlinked (`tempfile::tempfile`: `O_TMPFILE`
//! where the file system has it, else created and removed at once): nothing
//! is left in the temporary directory however runyard ends, SIGKILL
//! included, and the space is freed when the last descriptor closes. The
//! `shell` task opens its output files by path, so [`Spooled`] gives it
//! `/proc/self/fd/N` for each: the same file, opened afresh (the command
//! writes from the start; runyard's own descriptor reads from there).
//!
//! Protocol: an attempt registers its spool in [`Spools`] before its
//! command starts, replacing an earlier attempt's (never a later one's),
//! and marks it ended when the command has returned; the printer takes it
//! when its job has ended (after every attempt returned or was abandoned)
//! and its turn has come. The attempt holds its own reference until its
//! command returns, so a descriptor named in a path is never closed (and
//! its number reused) while a command may still open it.
//!
//! Outcome spools wait for the printer: for a slow reader of the output, or
//! with `--keep-order` for the jobs ahead. To keep open files bounded, at
//! most [`waiting_open`] ended spools stay open; past that, an attempt
//! moves its output to one [`Backlog`] file as its command ends. The
//! backlog is emptied whenever nothing in it waits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use runyard::{Context, JobId, RetryPolicy, Task, TaskDefaults, TaskError, TaskKind};
use runyard_builtins::{Shell, ShellOutput, ShellParams};

/// One attempt's output files.
#[derive(Debug)]
pub(super) struct Spool {
    attempt: u32,
    pub(super) out: File,
    pub(super) err: File,
}

impl Spool {
    pub(super) fn new(attempt: u32) -> io::Result<Spool> {
        Ok(Spool {
            attempt,
            out: tempfile::tempfile()?,
            err: tempfile::tempfile()?,
        })
    }
}

/// A path that opens `f` again.
fn reopen_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

/// Where an ended job's output is, as the printer takes it.
#[derive(Debug)]
pub(super) enum Held {
    /// It never started.
    None,
    /// In its own files.
    Spool(Arc<Spool>),
    /// In the backlog: give it back with [`Spools::release`] once printed.
    Moved(Moved, Arc<File>),
    /// It could not be moved to the backlog.
    Lost(io::Error),
}

/// A job's output while it waits.
#[derive(Debug)]
enum Entry {
    /// An attempt's files; `ended` once its command returned.
    Open {
        spool: Arc<Spool>,
        ended: bool,
    },
    Moved {
        attempt: u32,
        at: Moved,
    },
    Lost {
        attempt: u32,
        error: io::Error,
    },
}

impl Entry {
    fn attempt(&self) -> u32 {
        match self {
            Entry::Open { spool, .. } => spool.attempt,
            Entry::Moved { attempt, .. } | Entry::Lost { attempt, .. } => *attempt,
        }
    }
}

#[derive(Debug)]
struct Waiting {
    by_job: HashMap<JobId, Entry>,
    /// Outcome entries that hold their own files.
    open_ended: usize,
    open_limit: usize,
    backlog: Backlog,
}

impl Waiting {
    /// An entry replaced or taken: what it held is given back.
    fn forget(&mut self, e: &Entry) {
        match e {
            Entry::Open { ended: true, .. } => self.open_ended -= 1,
            // Emptying the backlog is a saving, not a need.
            Entry::Moved { .. } => drop(self.backlog.release()),
            Entry::Open { .. } | Entry::Lost { .. } => {}
        }
    }
}

/// The output of jobs that has not been printed, by job.
#[derive(Debug)]
pub(super) struct Spools {
    waiting: Mutex<Waiting>,
}

impl Spools {
    /// At most `open_limit` ended spools keep their own files.
    pub(super) fn new(open_limit: usize) -> Spools {
        Spools {
            waiting: Mutex::new(Waiting {
                by_job: HashMap::new(),
                open_ended: 0,
                open_limit,
                backlog: Backlog::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An attempt's command is about to start.
    pub(super) fn started(&self, job: JobId, spool: Arc<Spool>) {
        let mut w = self.lock();
        if w.by_job
            .get(&job)
            .is_some_and(|e| e.attempt() > spool.attempt)
        {
            return;
        }
        let entry = Entry::Open {
            spool,
            ended: false,
        };
        if let Some(old) = w.by_job.insert(job, entry) {
            w.forget(&old);
        }
    }

    /// An attempt's command returned: its output waits, in its own files
    /// while few do, else in the backlog.
    pub(super) fn ended(&self, job: JobId, attempt: u32) {
        let mut w = self.lock();
        let w = &mut *w;
        let Some(Entry::Open { spool, ended }) = w.by_job.get_mut(&job) else {
            return;
        };
        if spool.attempt != attempt || *ended {
            return;
        }
        if w.open_ended < w.open_limit {
            *ended = true;
            w.open_ended += 1;
            return;
        }
        let entry = match w.backlog.keep(spool) {
            Ok(at) => Entry::Moved { attempt, at },
            Err(error) => Entry::Lost { attempt, error },
        };
        w.by_job.insert(job, entry);
    }

    /// The output of an ended job (its last attempt's).
    pub(super) fn take(&self, job: JobId) -> Held {
        let mut w = self.lock();
        let Some(entry) = w.by_job.remove(&job) else {
            return Held::None;
        };
        match entry {
            Entry::Open { spool, ended } => {
                if ended {
                    w.open_ended -= 1;
                }
                Held::Spool(spool)
            }
            Entry::Moved { at, .. } => Held::Moved(at, w.backlog.file()),
            Entry::Lost { error, .. } => Held::Lost(error),
        }
    }

    /// A moved output was printed.
    pub(super) fn release(&self) -> io::Result<()> {
        self.lock().backlog.release()
    }
}

/// The `shell` task as `exec` runs it: the same parameters and outcome,
/// the output spooled (see the module comment), and one attempt unless
/// `--max-attempts` asks for more (as xargs and parallel run a command once).
#[derive(Debug)]
pub(super) struct Spooled {
    pub(super) spools: Arc<Spools>,
}

impl Task for Spooled {
    const NAME: &'static str = Shell::NAME;
    const KIND: TaskKind = Shell::KIND;
    const DESCRIPTION: &'static str = Shell::DESCRIPTION;
    type Params = ShellParams;
    type Output = ShellOutput;

    fn defaults(&self) -> TaskDefaults {
        TaskDefaults::new().policy(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
    }

    fn run(&self, mut p: ShellParams, ctx: &Context) -> Result<ShellOutput, TaskError> {
        let spool = Spool::new(ctx.attempt()).map_err(|e| {
            TaskError::retryable(format!(
                "cannot make a file for the command's output in {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
        let spool = Arc::new(spool);
        p.stdout_file = Some(reopen_path(&spool.out));
        p.stderr_file = Some(reopen_path(&spool.err));
        self.spools.started(ctx.job_id(), Arc::clone(&spool));
        let result = Shell.run(p, ctx);
        self.spools.ended(ctx.job_id(), ctx.attempt());
        drop(spool);
        result
    }
}

/// How many ended spools keep their own files: two files each, in all an
/// eighth of this process's open-file limit (at least 16 spools).
pub(super) fn waiting_open() -> usize {
    // None: unlimited (getrlimit does not fail for this resource).
    let soft =
        runyard::exec::os::soft_limit(runyard::exec::os::Resource::OpenFiles).unwrap_or(u64::MAX);
    usize::try_from(soft / 16).unwrap_or(usize::MAX).max(16)
}

/// Where a job's output lies in the backlog.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moved {
    out: (u64, u64),
    err: (u64, u64),
}

impl Moved {
    pub(super) fn out_len(&self) -> u64 {
        self.out.1
    }
}

/// One file holding the output of jobs that wait to be printed.
#[derive(Debug, Default)]
struct Backlog {
    file: Option<Arc<File>>,
    end: u64,
    waiting: usize,
}

impl Backlog {
    /// Moves a spool's content to the end of the backlog.
    fn keep(&mut self, spool: &Spool) -> io::Result<Moved> {
        let file = match &self.file {
            Some(f) => Arc::clone(f),
            None => Arc::clone(self.file.insert(Arc::new(tempfile::tempfile()?))),
        };
        let out_at = self.end;
        let out_len = io::copy(&mut &spool.out, &mut &*file)?;
        let err_len = io::copy(&mut &spool.err, &mut &*file)?;
        self.end += out_len + err_len;
        self.waiting += 1;
        Ok(Moved {
            out: (out_at, out_len),
            err: (out_at + out_len, err_len),
        })
    }

    fn file(&self) -> Arc<File> {
        Arc::clone(self.file.as_ref().expect("a moved output has a backlog"))
    }

    /// A moved output was printed or replaced: once none waits, the file is
    /// emptied.
    fn release(&mut self) -> io::Result<()> {
        self.waiting -= 1;
        if self.waiting == 0 {
            self.end = 0;
            if let Some(f) = &self.file {
                f.set_len(0)?;
                (&**f).seek(SeekFrom::Start(0))?;
            }
        }
        Ok(())
    }
}

impl Moved {
    /// Readers of a moved output's standard output and standard error.
    pub(super) fn readers<'a>(&self, file: &'a File) -> (At<'a>, At<'a>) {
        (At::new(file, self.out), At::new(file, self.err))
    }
}

/// Reads a range of a file (without moving its offset).
#[derive(Debug)]
pub(super) struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> At<'a> {
    fn new(file: &'a File, (at, len): (u64, u64)) -> At<'a> {
        At {
            file,
            pos: at,
            end: at + len,
        }
    }
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_command_writes_its_spool_through_the_reopened_path_and_runyard_reads_it_back() {
        let spool = Spool::new(1).unwrap();
        let mut w = File::create(reopen_path(&spool.out)).unwrap();
        w.write_all(b"hello").unwrap();
        drop(w);
        let mut back = String::new();
        (&spool.out).read_to_string(&mut back).unwrap();
        assert_eq!(back, "hello");
    }

    #[test]
    fn a_later_attempts_spool_is_never_replaced_by_an_earlier_ones() {
        let spools = Spools::new(16);
        spools.started(JobId(1), Arc::new(Spool::new(2).unwrap()));
        spools.started(JobId(1), Arc::new(Spool::new(1).unwrap()));
        spools.ended(JobId(1), 1);
        match spools.take(JobId(1)) {
            Held::Spool(s) => assert_eq!(s.attempt, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(spools.take(JobId(1)), Held::None));
    }

    /// A spool whose command wrote `text` to standard output and `e` to
    /// standard error.
    fn written(attempt: u32, text: &str) -> Arc<Spool> {
        let s = Spool::new(attempt).unwrap();
        File::create(reopen_path(&s.out))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        File::create(reopen_path(&s.err))
            .unwrap()
            .write_all(b"e")
            .unwrap();
        Arc::new(s)
    }

    #[test]
    fn past_the_limit_ended_output_moves_to_the_backlog_which_empties_when_none_waits() {
        let spools = Spools::new(1);
        let texts = ["one", "two!", "three"];
        for (i, text) in texts.iter().enumerate() {
            let job = JobId(i as u64 + 1);
            spools.started(job, written(1, text));
            spools.ended(job, 1);
        }
        assert_eq!(spools.lock().open_ended, 1);
        for (i, text) in texts.iter().enumerate().rev() {
            let (mut o, mut e) = (String::new(), String::new());
            match spools.take(JobId(i as u64 + 1)) {
                Held::Spool(s) => {
                    assert_eq!(i, 0, "the first keeps its own files");
                    (&s.out).read_to_string(&mut o).unwrap();
                    (&s.err).read_to_string(&mut e).unwrap();
                }
                Held::Moved(at, file) => {
                    let (mut out, mut err) = at.readers(&file);
                    out.read_to_string(&mut o).unwrap();
                    err.read_to_string(&mut e).unwrap();
                    assert_eq!(at.out_len(), text.len() as u64);
                    spools.release().unwrap();
                }
                other => panic!("{other:?}"),
            }
            assert_eq!((o.as_str(), e.as_str()), (*text, "e"));
        }
        let w = spools.lock();
        assert_eq!((w.open_ended, w.backlog.waiting, w.backlog.end), (0, 0, 0));
        let len = w.backlog.file.as_ref().unwrap().metadata().unwrap().len();
        assert_eq!(len, 0, "the backlog was emptied");
    }
}
