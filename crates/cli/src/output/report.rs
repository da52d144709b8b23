//! The run's machine outputs: `--json` (the report) and `--events` (JSON
//! lines), checked before anything is opened ([`OutputPaths`]), created
//! before the run starts ([`RunOutputs`]) and finished after it; a write
//! that fails is told once, by the flag that named the output.
//!
//! The report is written as the run goes ([`RunOutputs::report_sink`]):
//! a thread writes each job that ended, read back from the queue, as soon
//! as every job before it (by id) is written, so the jobs keep their
//! order and only the ids of jobs that ended ahead of an unfinished one
//! wait. When the run ends, the jobs not written yet (from the first
//! one not written, by id: unfinished ones, and those a resumed run found
//! ended) are read a page at a time and written, then the summary. Each
//! job is written once, and the file is the one `write_report_json`
//! writes.
//!
//! The same thread counts each job it reads in the summary (its
//! percentiles from the histogram sketch of `runyard_core::Sketch`), so
//! the summary needs no second reading of the queue; and on a memory
//! queue that forgets ([`runyard::queue::MemoryQueue::forgetting`]) it
//! tells the queue each job it has read, which then holds only the jobs
//! not yet ended or read. With such a queue the thread runs even without
//! `--json`, for the summary alone: then it counts each job as it ends,
//! in any order, and at the end the jobs that did not end. Its sink must
//! be the run's last: a job is read (and may be forgotten) once its end
//! has reached every other sink.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use runyard::event::{Event, EventSink, JsonLines};
use runyard::queue::{ListFilter, MemoryQueue, Queue, QueueError};
use runyard::report::{HeldJobs, JobView, Summary, SummaryBuilder};
use runyard::{JobId, ReportReader, RunError};

use crate::exit::RunnerFailure;
use crate::jobs::InputError;

type Out = Box<dyn Write + Send>;

/// How a run ended, for its report: a run the queue stopped early is
/// reported as far as the queue has it, with the failure that stopped it.
pub(crate) fn split_end(
    ended: Result<ReportReader, RunError>,
) -> Result<(ReportReader, Option<QueueError>), RunError> {
    match ended {
        Ok(r) => Ok((r, None)),
        Err(RunError::Stopped { error, run }) => Ok((*run, Some(error))),
        Err(e) => Err(e),
    }
}

/// A run's `--json` and `--events` paths, each checked to be one that can
/// be created ([`creatable`]); nothing is opened yet.
#[derive(Debug, Default)]
pub(crate) struct OutputPaths {
    json: Option<PathBuf>,
    events: Option<PathBuf>,
}

impl OutputPaths {
    /// Checks both paths (a path that cannot be created is an input error).
    pub(crate) fn check(
        json: Option<&PathBuf>,
        events: Option<&PathBuf>,
    ) -> Result<OutputPaths, InputError> {
        for (p, what) in [(json, "report"), (events, "events")] {
            if let Some(p) = p {
                creatable(p).map_err(|e| cannot_create(p, what, e))?;
            }
        }
        Ok(OutputPaths {
            json: json.cloned(),
            events: events.cloned(),
        })
    }

    /// Creates the files, once the command has opened what it needs.
    pub(crate) fn open(&self) -> Result<RunOutputs, InputError> {
        RunOutputs::open(self.json.as_ref(), self.events.as_ref())
    }
}

/// Checks, before anything is opened, that `p` can be created, without
/// leaving a trace: an existing file (or directory) is opened for writing
/// and closed untouched; a missing one is created and removed again.
/// Other existing files (a FIFO, `/dev/full`) and a dangling link are
/// left to the moment they are opened: opening a FIFO would wait for its
/// reader. `-` (standard output) can always be written.
pub(crate) fn creatable(p: &Path) -> io::Result<()> {
    if is_stdout(p) {
        return Ok(());
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() || m.is_dir() => {
            std::fs::OpenOptions::new().write(true).open(p).map(drop)
        }
        Ok(_) => Ok(()),
        Err(_) if std::fs::symlink_metadata(p).is_ok() => Ok(()),
        Err(_) => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)?;
            let _ = std::fs::remove_file(p);
            Ok(())
        }
    }
}

/// The error of an output file that cannot be created (an input error).
fn cannot_create(p: &Path, what: &str, e: io::Error) -> InputError {
    InputError::new(
        p.display().to_string(),
        format!("cannot create the {what} file: {e}"),
    )
}

/// The report as it is written, and the summary as it is counted (see
/// the module comment).
struct Streaming {
    /// The report, when `--json` was given.
    out: Option<BufWriter<Out>>,
    queue: Arc<dyn Queue>,
    /// The queue that forgets the jobs read, if it does.
    forget: Option<Arc<MemoryQueue>>,
    /// Jobs read since the queue was last told.
    read: Vec<JobId>,
    /// With no report: jobs whose end was told before the queue had it,
    /// counted at the end.
    later: Vec<JobId>,
    summary: SummaryBuilder,
    /// The id of the first job not written.
    next: u64,
    /// Jobs that ended after `next`, not written yet.
    ended: BTreeSet<u64>,
    wrote_one: bool,
    /// The first write that failed: nothing more is written.
    failed: Option<io::Error>,
    /// Reading a job back failed.
    unread: Option<QueueError>,
}

const PAGE: usize = 10_000;

/// Calls `each` with every job of `queue` after `after` (from the first
/// when `None`), in id order, read a page at a time.
fn each_job(
    queue: &dyn Queue,
    mut after: Option<JobId>,
    mut each: impl FnMut(JobView),
) -> Result<(), QueueError> {
    loop {
        let page = queue.inspect()?.list(&ListFilter {
            after,
            limit: PAGE,
            ..ListFilter::default()
        })?;
        after = page.last().map(|v| v.id);
        let n = page.len();
        page.into_iter().for_each(&mut each);
        if n < PAGE {
            return Ok(());
        }
    }
}

impl Streaming {
    fn new(out: Option<Out>, queue: Arc<dyn Queue>, forget: Option<Arc<MemoryQueue>>) -> Streaming {
        let mut s = Streaming {
            out: out.map(|o| BufWriter::with_capacity(64 * 1024, o)),
            queue,
            forget,
            read: Vec::new(),
            later: Vec::new(),
            summary: SummaryBuilder::new(),
            next: 1,
            ended: BTreeSet::new(),
            wrote_one: false,
            failed: None,
            unread: None,
        };
        if let Some(out) = &mut s.out {
            let head = out.write_all(b"{\"jobs\": [");
            s.wrote(head);
        }
        s
    }

    fn wrote(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.failed.get_or_insert(e);
        }
    }

    /// Counts one job in the summary and writes it to the report.
    fn write_view(&mut self, mut v: JobView) {
        self.summary.add(&v);
        let Some(out) = self.out.as_mut().filter(|_| self.failed.is_none()) else {
            return;
        };
        // As `write_report_json` writes it: without each job's settings
        // (mostly its task's, the same for thousands of jobs).
        v.settings = None;
        let sep: &[u8] = if self.wrote_one { b",\n  " } else { b"\n  " };
        self.wrote_one = true;
        let r = out
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut *out, &v).map_err(io::Error::from));
        self.wrote(r);
    }

    /// Tells a forgetting queue the jobs read since it was last told.
    fn tell(&mut self) {
        if let Some(q) = &self.forget {
            if !self.read.is_empty() {
                q.reported(&self.read);
            }
        }
        self.read.clear();
    }

    /// Notes that `id` ended and writes every job now due; with no report
    /// to write, counts it at once.
    fn ended(&mut self, id: u64) {
        if self.out.is_none() {
            return self.counted(JobId(id));
        }
        if id < self.next || self.unread.is_some() {
            return;
        }
        self.ended.insert(id);
        while self.ended.first() == Some(&self.next) {
            let view = match self.queue.inspect().and_then(|q| q.get(JobId(self.next))) {
                Ok(Some(v)) if v.state.is_terminal() => v,
                // Not recorded as ended yet: left for the end.
                Ok(_) => return,
                Err(e) => {
                    self.unread = Some(e);
                    return;
                }
            };
            self.ended.pop_first();
            self.write_view(view);
            if self.forget.is_some() {
                self.read.push(JobId(self.next));
            }
            self.next += 1;
        }
    }

    /// Counts job `id`, which ended, in the summary (no report is
    /// written: the order does not matter, and a job that ended long after
    /// the others holds none of them up).
    fn counted(&mut self, id: JobId) {
        if self.unread.is_some() {
            return;
        }
        match self.queue.inspect().and_then(|q| q.get(id)) {
            Ok(Some(v)) if v.state.is_terminal() => {
                self.summary.add(&v);
                self.read.push(id);
            }
            Ok(Some(_)) => self.later.push(id),
            Ok(None) => {}
            Err(e) => self.unread = Some(e),
        }
    }

    fn run(mut self, rx: Receiver<JobId>) -> Streaming {
        while let Ok(id) = rx.recv() {
            self.ended(id.0);
            while let Ok(id) = rx.try_recv() {
                self.ended(id.0);
            }
            self.tell();
            if let Some(out) = self.out.as_mut().filter(|_| self.failed.is_none()) {
                let r = out.flush();
                self.wrote(r);
            }
        }
        self
    }

    /// Reads and writes the jobs not written yet, then writes the summary
    /// (`held` its part that the jobs do not say); the summary and the
    /// write that failed, if one did.
    fn finish(
        mut self,
        ended: &ReportReader,
        held: Vec<HeldJobs>,
    ) -> Result<(Summary, Option<io::Error>), QueueError> {
        if let Some(e) = self.unread.take() {
            return Err(e);
        }
        if self.out.is_none() {
            // Counted as they ended: the jobs that did not end are left,
            // and those told early.
            for id in std::mem::take(&mut self.later) {
                match self.queue.inspect()?.get(id)? {
                    Some(v) if v.state.is_terminal() => self.summary.add(&v),
                    // Not ended: counted with the others below.
                    _ => {}
                }
            }
            let queue = Arc::clone(&self.queue);
            each_job(&*queue, None, |v| {
                if !v.state.is_terminal() {
                    self.summary.add(&v);
                }
            })?;
            let mut summary =
                std::mem::take(&mut self.summary).finish(ended.wall(), ended.interrupted());
            summary.held = held;
            return Ok((summary, None));
        }
        let after = self.next.checked_sub(1).filter(|n| *n > 0).map(JobId);
        let queue = Arc::clone(&self.queue);
        each_job(&*queue, after, |v| self.write_view(v))?;
        let mut summary =
            std::mem::take(&mut self.summary).finish(ended.wall(), ended.interrupted());
        summary.held = held;
        if let Some(out) = self.out.as_mut().filter(|_| self.failed.is_none()) {
            let r = (|| {
                out.write_all(b"\n],\n\"summary\": ")?;
                serde_json::to_writer_pretty(&mut *out, &summary).map_err(io::Error::from)?;
                out.write_all(b"}\n")?;
                out.flush()
            })();
            self.wrote(r);
        }
        Ok((summary, self.failed))
    }
}

/// The event sink of a streamed report: passes each ended job to the
/// writing thread.
struct ReportSink {
    tx: Mutex<Option<Sender<JobId>>>,
}

impl EventSink for ReportSink {
    fn event(&self, e: &Event<'_>) {
        let job = match e {
            Event::Succeeded { job, .. }
            | Event::Dead { job, .. }
            | Event::Cancelled { job, .. } => *job,
            _ => return,
        };
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(job);
        }
    }
}

/// The report while it is written: the sink, and the thread that writes.
struct StreamedReport {
    /// The report's path; none when only the summary is counted.
    path: Option<PathBuf>,
    sink: Arc<ReportSink>,
    thread: JoinHandle<Streaming>,
}

/// A run's `--json` and `--events` outputs, opened before anything runs.
pub(crate) struct RunOutputs {
    json: Option<(PathBuf, Out)>,
    streamed: Option<StreamedReport>,
    events: Option<(PathBuf, Arc<JsonLines<Out>>)>,
}

impl RunOutputs {
    /// Creates the files (a path that cannot be created is an input error).
    pub(crate) fn open(
        json: Option<&PathBuf>,
        events: Option<&PathBuf>,
    ) -> Result<RunOutputs, InputError> {
        Ok(RunOutputs {
            json: json
                .map(|p| Ok::<_, InputError>((p.clone(), create_output(p, "report")?)))
                .transpose()?,
            streamed: None,
            events: events
                .map(|p| {
                    Ok::<_, InputError>((
                        p.clone(),
                        Arc::new(JsonLines::new(create_output(p, "events")?)),
                    ))
                })
                .transpose()?,
        })
    }

    /// Starts writing the report and counting the summary as jobs of
    /// `queue` end (see the module comment); its sink, when `--json` was
    /// given or `forget` is the queue, which forgets each job read. The
    /// sink goes last among the run's sinks.
    pub(crate) fn report_sink(
        &mut self,
        queue: Arc<dyn Queue>,
        forget: Option<Arc<MemoryQueue>>,
    ) -> Option<Arc<dyn EventSink>> {
        let (path, out) = match self.json.take() {
            Some((path, out)) => (Some(path), Some(out)),
            None if forget.is_some() => (None, None),
            None => return None,
        };
        let (tx, rx) = channel();
        let streaming = Streaming::new(out, queue, forget);
        let thread = std::thread::Builder::new()
            .name("runyard-report".into())
            .spawn(move || streaming.run(rx))
            .expect("a thread for the report");
        let sink = Arc::new(ReportSink {
            tx: Mutex::new(Some(tx)),
        });
        self.streamed = Some(StreamedReport {
            path,
            sink: Arc::clone(&sink),
            thread,
        });
        Some(sink)
    }

    /// The sink of `--events`, if given.
    pub(crate) fn events_sink(&self) -> Option<Arc<dyn EventSink>> {
        self.events
            .as_ref()
            .map(|(_, sink)| Arc::clone(sink) as Arc<dyn EventSink>)
    }

    /// After the run (its events flushed): the write to the events file
    /// that failed, if one did (for a command with no report, the whole of
    /// its finish).
    pub(crate) fn events_failure(&self) -> Option<RunnerFailure> {
        let (path, sink) = self.events.as_ref()?;
        sink.take_error()
            .map(|e| output_failed("--events", path, &e))
    }

    /// After the run `ended` (its events flushed): notes an events file
    /// that failed, counts the summary (`held` its jobs held at the
    /// interrupt) and writes the report. Returns the summary and the
    /// outputs that failed.
    pub(crate) fn finish(
        self,
        ended: &ReportReader,
        held: Vec<HeldJobs>,
    ) -> anyhow::Result<(Summary, Vec<RunnerFailure>)> {
        let reading = |e: QueueError| RunnerFailure(format!("reading the report: {e}"));
        let mut failed: Vec<RunnerFailure> = self.events_failure().into_iter().collect();
        let streaming = match (self.streamed, self.json) {
            (Some(s), _) => {
                drop(s.sink.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
                let st = s.thread.join().expect("the report's thread does not panic");
                (s.path, st)
            }
            // Not streamed by the command: written whole now.
            (None, Some((path, out))) => (
                Some(path),
                Streaming::new(Some(out), Arc::clone(ended.queue()), None),
            ),
            // No report: the summary alone, read from the queue.
            (None, None) => {
                let mut summary = ended.summary().map_err(reading)?;
                summary.held = held;
                return Ok((summary, failed));
            }
        };
        let (path, st) = streaming;
        let (summary, write) = st.finish(ended, held).map_err(reading)?;
        if let (Some(e), Some(path)) = (write, path) {
            failed.push(output_failed("--json", &path, &e));
        }
        Ok((summary, failed))
    }
}

/// Ends a run whose outputs failed: every failure in one error, each said
/// once (exit code 3); nothing if none failed.
pub(crate) fn check_outputs(failures: Vec<RunnerFailure>) -> Result<(), RunnerFailure> {
    if failures.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = failures.into_iter().map(|f| f.0).collect();
    Err(RunnerFailure(all.join("; ")))
}

/// An I/O error's message, without the ` (os error N)` std adds to it.
pub(crate) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

/// A write to one of the run's outputs failed: the output, by the flag
/// that named it, and why (`--events out.jsonl: No space left on device`).
pub(crate) fn output_failed(flag: &str, path: &Path, e: &io::Error) -> RunnerFailure {
    let name = if is_stdout(path) {
        "- (standard output)".to_string()
    } else {
        path.display().to_string()
    };
    RunnerFailure(format!("{flag} {name}: {}", io_message(e)))
}

/// The path for messages: `-` is standard output.
pub(crate) fn is_stdout(p: &Path) -> bool {
    p == Path::new("-")
}

/// Opens an output file before anything runs, so a bad path is an input error.
pub(crate) fn create_output(p: &Path, what: &str) -> Result<Out, InputError> {
    if is_stdout(p) {
        return Ok(Box::new(std::io::stdout()));
    }
    std::fs::File::create(p)
        .map(|f| Box::new(f) as Out)
        .map_err(|e| cannot_create(p, what, e))
}
