//! `GET /metrics`: queue-wide gauges in the Prometheus text exposition
//! format 0.0.4 (docs/metrics.md lists them). Every label's values are
//! bounded: task names and states, never a job id or a key.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use runyard_core::JobState;
use runyard_queue::{Counts, ListFilter};

use crate::api::blocking;
use crate::error::ApiError;
use crate::AppState;

/// The content type of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one scrape reads from the queue.
struct Scrape {
    tasks: Vec<(String, Counts)>,
    /// Seconds since the oldest queued job was enqueued (0 when none).
    oldest_queued_s: f64,
    workers: usize,
    leases: u64,
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let scrape = blocking(&s, |q| {
        let inspect = q.inspect()?;
        let tasks = inspect.counts_by_task()?;
        // Ids grow with each submission: the queued job with the smallest
        // id is the one submitted first.
        let oldest = inspect.list(&ListFilter {
            state: Some(JobState::Queued),
            limit: 1,
            ..ListFilter::default()
        })?;
        let now = q.now();
        let oldest_queued_s = oldest
            .first()
            .map_or(0.0, |v| now.since(v.enqueued_at).as_secs_f64());
        let live = inspect.live_workers()?;
        Ok(Scrape {
            tasks,
            oldest_queued_s,
            workers: live.len(),
            leases: live.iter().map(|w| w.leases).sum(),
        })
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&scrape)).into_response())
}

fn render(s: &Scrape) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP runyard_jobs Jobs in the queue, by task and state.\n# TYPE runyard_jobs gauge"
    );
    for (task, counts) in &s.tasks {
        for state in JobState::ALL {
            let _ = writeln!(
                out,
                "runyard_jobs{{task=\"{}\",state=\"{}\"}} {}",
                escape(task),
                state.as_str(),
                counts.get(state)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP runyard_oldest_queued_job_age_seconds Seconds since the oldest queued job was \
         submitted (0 when no job is queued).\n\
         # TYPE runyard_oldest_queued_job_age_seconds gauge\n\
         runyard_oldest_queued_job_age_seconds {}",
        s.oldest_queued_s
    );
    let _ = writeln!(
        out,
        "# HELP runyard_workers_alive Registered workers whose heartbeat has not lapsed.\n\
         # TYPE runyard_workers_alive gauge\n\
         runyard_workers_alive {}",
        s.workers
    );
    let _ = writeln!(
        out,
        "# HELP runyard_leases Jobs the live workers hold leases on.\n\
         # TYPE runyard_leases gauge\n\
         runyard_leases {}",
        s.leases
    );
    out
}

/// A label value as the text format writes it: `\`, `"` and newlines
/// escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_has_every_state_and_labels_are_escaped() {
        let s = Scrape {
            tasks: vec![(
                "we\"ird\\\n".to_string(),
                Counts {
                    dead: 2,
                    ..Counts::default()
                },
            )],
            oldest_queued_s: 1.5,
            workers: 3,
            leases: 4,
        };
        let text = render(&s);
        assert!(text.contains("runyard_jobs{task=\"we\\\"ird\\\\\\n\",state=\"dead\"} 2\n"));
        assert_eq!(text.matches("runyard_jobs{").count(), 7);
        assert!(text.contains("\nrunyard_oldest_queued_job_age_seconds 1.5\n"));
        assert!(text.contains("\nrunyard_workers_alive 3\n"));
        assert!(text.contains("\nrunyard_leases 4\n"));
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("runyard_"),
                "{line}"
            );
        }
    }
}
