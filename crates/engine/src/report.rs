//! Reading a run back from its queue: the report and its JSON.

use std::io::{self, Write};
use std::time::Duration;

use runyard_core::{JobView, Summary, SummaryBuilder};
use runyard_queue::{ListFilter, Queue, QueueError};
use serde::Serialize;

/// Every job of a queue with its attempts, and the summary.
///
/// The JSON form is documented in [`runyard_core`]'s `report` module and in
/// `docs/report-format.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every job, by id.
    pub jobs: Vec<JobView>,
    /// The summary.
    pub summary: Summary,
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
        for v in page {
            f(v)?;
        }
        if n < PAGE {
            return Ok(());
        }
    }
}

/// A report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Report {
    /// Reads every job of `queue` into memory.
    pub fn collect(
        queue: &dyn Queue,
        wall: Duration,
        interrupted: bool,
    ) -> Result<Report, QueueError> {
        let mut jobs = Vec::new();
        let mut b = SummaryBuilder::new();
        for_each_job(queue, |v| {
            b.add(&v);
            jobs.push(v);
            Ok(())
        })
        .map_err(|e| match e {
            ReportError::Queue(q) => q,
            ReportError::Io(_) => unreachable!("collecting does not write"),
        })?;
        Ok(Report {
            jobs,
            summary: b.finish(wall, interrupted),
        })
    }

    /// The summary alone, reading the jobs a page at a time (memory stays
    /// bounded however many jobs there are).
    pub fn summarize(
        queue: &dyn Queue,
        wall: Duration,
        interrupted: bool,
    ) -> Result<Summary, QueueError> {
        let mut b = SummaryBuilder::new();
        for_each_job(queue, |v| {
            b.add(&v);
            Ok(())
        })
        .map_err(|e| match e {
            ReportError::Queue(q) => q,
            ReportError::Io(_) => unreachable!("summarizing does not write"),
        })?;
        Ok(b.finish(wall, interrupted))
    }
}

/// Writes the report as JSON, `{"jobs": [...], "summary": {...}}`, reading
/// the jobs a page at a time.
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
