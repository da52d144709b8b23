//! The child role: what a child process runs.
//!
//! The engine starts the same executable with `RUNYARD_CHILD` in its
//! environment (set to the engine's pid), the protocol's pipes on file
//! descriptors 3 and 4, the shared page on 5, and, when the engine has a
//! reaper, the reaper's life pipe on 6 and its table on 7 (see `reaper`:
//! `Setup` names the child's page). The child removes the variable and
//! marks the descriptors close-on-exec (so commands its tasks start inherit
//! none of them), greets the engine, and runs what it is sent, one attempt
//! at a time.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runyard_core::{CancelToken, Context, JobParams, Registry, TaskIndex, Timestamp};

use super::protocol::{
    FrameReader, FromChild, ToChild, WireAttempt, WireOutcome, WireResult, VERSION,
};
use super::shm::Shm;
use crate::os;
use crate::panic::catch_panic;

/// The environment variable that marks a child process.
pub const CHILD_ENV: &str = "RUNYARD_CHILD";

/// How long a result may wait in the child before it is sent (when the
/// attempts after it take long; otherwise it goes with its batch).
const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// Whether this process was started as a child by a runyard engine.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// In a child process, runs the child role with the tasks of `registry`
/// and exits; elsewhere returns at once. Call it first thing in `main` of
/// any binary that runs jobs in `process` mode, so the engine can start
/// that binary as its child processes.
pub fn enter_if_child_with(registry: impl FnOnce() -> Registry) {
    if is_child() {
        let code = run_child(&registry());
        std::process::exit(code);
    }
}

/// Runs the child role on descriptors 3 (from the engine), 4 (to it) and
/// 5 (the shared page) until the engine says to stop or goes away.
/// Returns the exit code.
pub fn run_child(registry: &Registry) -> i32 {
    let parent = std::env::var(CHILD_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    // Before any other thread starts: commands that tasks run must not
    // take themselves for child processes.
    std::env::remove_var(CHILD_ENV);
    // The engine may have died between starting us and our parent-death
    // signal taking effect.
    if parent.is_some_and(|p| p != os::parent_pid() as i32) {
        return 1;
    }
    // Commands that tasks start inherit none of them. 6 and 7 (the
    // reaper's life pipe and table) only when handed over, and taken at
    // `Setup` when they are.
    let inherited = [3, 4, 5].map(os::take_inherited);
    for fd in [6, 7] {
        os::close_inherited_on_exec(fd);
    }
    crate::panic::install_panic_hook();
    let [input, output, page] = inherited;
    let shm = match page.and_then(Shm::open) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "runyard worker {}: no shared page: {e}",
                std::process::id()
            );
            return 2;
        }
    };
    let (input, output) = match (input, output) {
        (Ok(i), Ok(o)) => (File::from(i), File::from(o)),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(
                std::io::stderr(),
                "runyard worker {}: no pipes to the engine: {e}",
                std::process::id()
            );
            return 2;
        }
    };
    match serve(registry, input, output, shm) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "runyard worker {}: {e}",
                std::process::id()
            );
            2
        }
    }
}

/// Results on their way to the engine, sent in groups.
struct Outbox {
    state: Mutex<Pending>,
}

struct Pending {
    file: File,
    buf: Vec<u8>,
    /// When the oldest result in `buf` was written there.
    oldest: Option<Instant>,
    broken: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, m: &FromChild, flush: bool) -> io::Result<()> {
        let mut p = self.lock();
        m.encode(&mut p.buf);
        if flush {
            return Outbox::flush(&mut p);
        }
        if p.oldest.is_none() {
            p.oldest = Some(Instant::now());
        }
        Ok(())
    }

    fn flush(p: &mut Pending) -> io::Result<()> {
        p.oldest = None;
        if p.buf.is_empty() {
            return Ok(());
        }
        let r = p.file.write_all(&p.buf);
        p.buf.clear();
        if r.is_err() {
            p.broken = true;
        }
        r
    }

    /// Sends results that have waited `FLUSH_AFTER`, so a long attempt
    /// never holds back the results of those before it. It looks on its own
    /// every `FLUSH_AFTER`: the runner never has to wake it.
    fn flusher(self: Arc<Outbox>) {
        loop {
            std::thread::sleep(FLUSH_AFTER);
            let mut p = self.lock();
            if p.broken {
                return;
            }
            if p.oldest.is_some_and(|t| t.elapsed() >= FLUSH_AFTER)
                && Outbox::flush(&mut p).is_err()
            {
                // The engine is gone.
                std::process::exit(1);
            }
        }
    }
}

struct Serve<'a> {
    registry: &'a Registry,
    /// The engine's task numbers, mapped to this binary's.
    tasks: Vec<Option<TaskIndex>>,
    names: Vec<String>,
    /// Whether the engine wants a `Started` before each result.
    report_starts: bool,
    input: File,
    reader: FrameReader,
    out: Arc<Outbox>,
    shm: Shm,
    /// Parents objects sent for the next batch, by attempt token.
    parents: Vec<(u64, Arc<str>)>,
}

fn serve(registry: &Registry, input: File, output: File, shm: Shm) -> io::Result<()> {
    let out = Arc::new(Outbox {
        state: Mutex::new(Pending {
            file: output,
            buf: Vec::with_capacity(4096),
            oldest: None,
            broken: false,
        }),
    });
    let flusher = Arc::clone(&out);
    std::thread::Builder::new()
        .name("runyard-results".into())
        .spawn(move || flusher.flusher())?;
    let mut w = Serve {
        registry,
        tasks: Vec::new(),
        names: Vec::new(),
        report_starts: false,
        input,
        reader: FrameReader::default(),
        out,
        shm,
        parents: Vec::new(),
    };
    w.out.push(
        &FromChild::Hello {
            version: VERSION,
            pid: std::process::id(),
        },
        true,
    )?;
    loop {
        let Some(msg) = w.next_message()? else {
            return Ok(());
        };
        match msg {
            ToChild::Setup {
                version,
                tasks,
                report_starts,
                groups,
            } => {
                if version != VERSION {
                    return Err(io::Error::other(format!(
                        "the engine speaks protocol {version}, this worker {VERSION}"
                    )));
                }
                if let Some(page) = groups {
                    if let Err(e) = crate::reaper::adopt(page) {
                        // The commands of this child get a reaper of its own.
                        let _ = writeln!(
                            io::stderr(),
                            "runyard worker {}: cannot use the engine's reaper: {e}",
                            std::process::id()
                        );
                    }
                }
                w.tasks = tasks.iter().map(|n| registry.lookup(n).ok()).collect();
                w.names = tasks;
                w.report_starts = report_starts;
            }
            ToChild::Parents { token, json } => w.parents.push((token, Arc::from(json))),
            ToChild::Batch(attempts) => {
                let batch = w.take_parents(attempts)?;
                w.run_batch(batch)?;
            }
            ToChild::Shutdown => return Ok(()),
        }
    }
}

impl Serve<'_> {
    /// The next message, blocking; `None` when the engine closed the pipe.
    fn next_message(&mut self) -> io::Result<Option<ToChild>> {
        loop {
            if let Some(m) = self.reader.next_to_child().map_err(io::Error::other)? {
                return Ok(Some(m));
            }
            if !self.reader.fill(&mut self.input)? {
                return Ok(None);
            }
        }
    }

    /// [`pair_parents`] with the objects sent since the last batch.
    fn take_parents(
        &mut self,
        attempts: Vec<WireAttempt>,
    ) -> io::Result<Vec<(WireAttempt, Option<Arc<str>>)>> {
        pair_parents(std::mem::take(&mut self.parents), attempts)
    }

    /// Runs a batch until its end or until the engine stops it.
    fn run_batch(&mut self, attempts: Vec<(WireAttempt, Option<Arc<str>>)>) -> io::Result<()> {
        let n = attempts.len();
        for (i, (a, parents)) in attempts.into_iter().enumerate() {
            let started_at = Timestamp::now();
            if !self.shm.begin(i as u64, started_at.as_micros()) {
                break;
            }
            if self.report_starts {
                let started = FromChild::Started {
                    token: a.token,
                    at: started_at,
                };
                self.out.push(&started, false)?;
            }
            let result = self.run_one(a, parents, started_at);
            self.shm.end(i as u64);
            self.out.push(&FromChild::Result(result), i + 1 == n)?;
        }
        // A stopped batch: what ran is reported now.
        let mut p = self.out.lock();
        Outbox::flush(&mut p)
    }

    fn run_one(
        &self,
        a: WireAttempt,
        parents: Option<Arc<str>>,
        started_at: Timestamp,
    ) -> WireResult {
        let start = Instant::now();
        let outcome = match self.tasks.get(a.task as usize).copied().flatten() {
            None => {
                let name = self.names.get(a.task as usize).map_or("?", String::as_str);
                WireOutcome::Failed {
                    intent: runyard_core::ErrorIntent::Permanent,
                    message: format!("task `{name}` is not registered in the worker's binary"),
                    detail: None,
                }
            }
            Some(idx) => {
                let params = JobParams::from_trusted_json(&a.params);
                let ctx = Context::new(a.job, a.attempt, CancelToken::new()).with_parents(parents);
                let task = self.registry.task(idx);
                match catch_panic(|| task.run_sync(&params, &ctx)) {
                    Ok(Ok(out)) => WireOutcome::Succeeded(out.as_json().to_string()),
                    Ok(Err(e)) => WireOutcome::failed(e),
                    Err(msg) => WireOutcome::Panicked(msg),
                }
            }
        };
        WireResult {
            token: a.token,
            started_at,
            duration_us: start.elapsed().as_micros() as u64,
            outcome,
        }
    }
}

/// Pairs each flagged attempt of a batch with the parents object sent
/// before it (`sent`, by token); objects no attempt names are dropped. A
/// flagged attempt whose object never came is a protocol error.
fn pair_parents(
    mut sent: Vec<(u64, Arc<str>)>,
    attempts: Vec<WireAttempt>,
) -> io::Result<Vec<(WireAttempt, Option<Arc<str>>)>> {
    attempts
        .into_iter()
        .map(|a| {
            if !a.parents {
                return Ok((a, None));
            }
            match sent.iter().position(|(t, _)| *t == a.token) {
                Some(i) => {
                    let (_, json) = sent.swap_remove(i);
                    Ok((a, Some(json)))
                }
                None => Err(io::Error::other(format!(
                    "protocol error: attempt {} of job {} has parents, but no Parents frame came for token {}",
                    a.attempt, a.job, a.token
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use runyard_core::JobId;

    use super::*;

    fn attempt(token: u64, parents: bool) -> WireAttempt {
        WireAttempt {
            token,
            task: 0,
            job: JobId(token),
            attempt: 1,
            params: "{}".into(),
            parents,
        }
    }

    #[test]
    fn each_flagged_attempt_takes_the_parents_sent_for_its_token() {
        let sent = vec![
            (3, Arc::from("{\"a\":3}")),
            (1, Arc::from("{\"a\":1}")),
            (9, Arc::from("{}")),
        ];
        let paired = pair_parents(
            sent,
            vec![attempt(1, true), attempt(2, false), attempt(3, true)],
        )
        .unwrap();
        let seen: Vec<(u64, Option<&str>)> = paired
            .iter()
            .map(|(a, p)| (a.token, p.as_deref()))
            .collect();
        assert_eq!(
            seen,
            vec![(1, Some("{\"a\":1}")), (2, None), (3, Some("{\"a\":3}"))]
        );
    }

    #[test]
    fn a_flagged_attempt_without_its_parents_is_a_protocol_error() {
        let e = pair_parents(Vec::new(), vec![attempt(7, true)]).unwrap_err();
        assert!(
            e.to_string().contains("no Parents frame came for token 7"),
            "{e}"
        );
    }
}
