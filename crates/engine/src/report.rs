//! Reading a run back from its queue: the report, whole or a page at a
//! time, and its JSON.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{JobView, Summary, SummaryBuilder};
use runyard_queue::{ListFilter, Queue, QueueError};
use serde::Serialize;

/// Every job of a queue with its attempts, and the summary.
///
/// The JSON form is documented in [`runyard_core`]'s `report` module and in
/// `docs/report-format.md`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Every job, by id.
    pub jobs: Vec<JobView>,
    /// The summary.
    pub summary: Summary,
}

/// A run that has ended, before its report is read: what
/// [`Run::join`](crate::Run::join) gives, for runs too large to read into
/// memory at once. [`ReportReader::summary`] reads the jobs a page at a
/// time, [`ReportReader::write_json`] writes them the same way;
/// [`ReportReader::report`] reads them all.
#[derive(Clone)]
pub struct ReportReader {
    queue: Arc<dyn Queue>,
    wall: Duration,
    interrupted: bool,
}

impl fmt::Debug for ReportReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportReader")
            .field("queue", &self.queue)
            .field("wall", &self.wall)
            .field("interrupted", &self.interrupted)
            .finish()
    }
}

const PAGE: usize = 10_000;

/// Calls `f` on every job of the queue, by id, a page at a time.
fn for_each_job(
    queue: &dyn Queue,
    mut f: impl FnMut(JobView) -> io::Result<()>,
) -> Result<(), ReportError> {
    let mut after = None;
    loop {
        let page = queue.inspect()?.list(&ListFilter {
            after,
            limit: PAGE,
            ..ListFilter::default()
        })?;
        let n = page.len();
        after = page.last().map(|v| v.id);
        for mut v in page {
            // A report leaves out each job's settings: mostly its task's,
            // the same for thousands of jobs (the API shows them).
            v.settings = None;
            f(v)?;
        }
        if n < PAGE {
            return Ok(());
        }
    }
}

/// Calls `f` on every job of the queue, when `f` cannot fail.
fn read_jobs(queue: &dyn Queue, mut f: impl FnMut(JobView)) -> Result<(), QueueError> {
    for_each_job(queue, |v| {
        f(v);
        Ok(())
    })
    .map_err(|e| match e {
        ReportError::Queue(q) => q,
        ReportError::Io(_) => unreachable!("reading jobs does not write"),
    })
}

/// A report could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ReportReader {
    pub(crate) fn new(queue: Arc<dyn Queue>, wall: Duration, interrupted: bool) -> ReportReader {
        ReportReader {
            queue,
            wall,
            interrupted,
        }
    }

    /// The run's queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// From the start of the run to its end.
    pub fn wall(&self) -> Duration {
        self.wall
    }

    /// Whether the run was interrupted.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Reads every job of the queue into memory.
    pub fn report(&self) -> Result<Report, QueueError> {
        let mut jobs = Vec::new();
        let mut b = SummaryBuilder::new();
        read_jobs(&*self.queue, |v| {
            b.add(&v);
            jobs.push(v);
        })?;
        Ok(Report {
            jobs,
            summary: b.finish(self.wall, self.interrupted),
        })
    }

    /// The summary alone, reading the jobs a page at a time (memory stays
    /// bounded however many jobs there are).
    pub fn summary(&self) -> Result<Summary, QueueError> {
        let mut b = SummaryBuilder::new();
        read_jobs(&*self.queue, |v| b.add(&v))?;
        Ok(b.finish(self.wall, self.interrupted))
    }

    /// Writes the report as JSON, `{"jobs": [...], "summary": {...}}`,
    /// reading the jobs a page at a time; `summary` is
    /// [`ReportReader::summary`]'s.
    pub fn write_json(&self, summary: &Summary, out: impl Write) -> Result<(), ReportError> {
        write_report_json(&*self.queue, summary, out)
    }
}

/// Writes the report of the jobs in `queue` as JSON, `{"jobs": [...],
/// "summary": {...}}`, reading the jobs a page at a time.
pub fn write_report_json(
    queue: &dyn Queue,
    summary: &Summary,
    out: impl Write,
) -> Result<(), ReportError> {
    let mut out = io::BufWriter::new(out);
    out.write_all(b"{\"jobs\": [")?;
    let mut first = true;
    for_each_job(queue, |v| {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        out.write_all(b"\n  ")?;
        serde_json::to_writer(&mut out, &v).map_err(io::Error::from)
    })?;
    out.write_all(b"\n],\n\"summary\": ")?;
    serde_json::to_writer_pretty(&mut out, summary).map_err(io::Error::from)?;
    out.write_all(b"}\n")?;
    out.flush()?;
    Ok(())
}
