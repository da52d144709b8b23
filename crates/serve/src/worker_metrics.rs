//! A worker's own metrics: [`WorkerMetrics`] counts what one worker does
//! (the engine calls it as a [`Meter`]) and `GET /metrics` of
//! `runyard worker --listen` writes it in the Prometheus text format
//! (docs/metrics.md lists the metrics). Nothing here reads the queue:
//! summed over every worker, each attempt, claim, rescue and tick is
//! counted once. Every label's values are bounded: task names, outcomes,
//! the kind of a tick's settlement; never a job id or a key.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use runyard_core::OutcomeKind;
use runyard_engine::Meter;

use crate::error::ApiError;
use crate::AppState;

/// Bucket bounds, in seconds, of both histograms: from a millisecond to an
/// hour (attempts of runyard's tasks run from microseconds to hours).
const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
    3600.0,
];

/// The metrics of one worker, fed by the engine through [`Meter`].
///
/// Each event costs a lookup of its series by label values (a hash of the
/// task's name under a read lock) and atomic additions; nothing is
/// allocated once a task's series exist, and those of the tasks given to
/// [`WorkerMetrics::new`] exist from the start (at zero, so that a rate is
/// defined before the first attempt).
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    attempts: IntCounterVec,
    duration: HistogramVec,
    wait: HistogramVec,
    claims: IntCounter,
    rescued: IntCounter,
    lost: IntCounter,
    running: IntGauge,
    /// `None` when the worker fires no schedules.
    ticks: Option<IntCounterVec>,
}

impl WorkerMetrics {
    /// The metrics of a worker that runs `tasks`; with `fires_schedules`,
    /// also the schedule ticks it settles.
    pub fn new<'a>(tasks: impl IntoIterator<Item = &'a str>, fires_schedules: bool) -> Self {
        let registry = Registry::new();
        let attempts = IntCounterVec::new(
            Opts::new(
                "runyard_attempts_total",
                "Attempts this worker ran to an outcome, by task and outcome.",
            ),
            &["task", "outcome"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "runyard_attempt_duration_seconds",
                "How long this worker's attempts ran, by task.",
            )
            .buckets(BUCKETS.to_vec()),
            &["task"],
        )
        .expect("valid metric");
        let wait = HistogramVec::new(
            HistogramOpts::new(
                "runyard_queue_wait_seconds",
                "How long jobs waited, from ready to run to their attempt's start on this worker, by task.",
            )
            .buckets(BUCKETS.to_vec()),
            &["task"],
        )
        .expect("valid metric");
        let claims = IntCounter::new(
            "runyard_claims_total",
            "Jobs this worker claimed from the queue.",
        )
        .expect("valid metric");
        let rescued = IntCounter::new(
            "runyard_rescued_leases_total",
            "Expired leases of other workers that this worker's rescues put back in the queue.",
        )
        .expect("valid metric");
        let lost = IntCounter::new(
            "runyard_lost_leases_total",
            "Leases this worker lost (taken over, or given up unrenewed): their attempts were stopped unrecorded.",
        )
        .expect("valid metric");
        let running = IntGauge::new(
            "runyard_attempts_running",
            "Attempts running on this worker now.",
        )
        .expect("valid metric");
        let ticks = fires_schedules.then(|| {
            IntCounterVec::new(
                Opts::new(
                    "runyard_schedule_ticks_total",
                    "Schedule ticks this worker settled, by result: fired, skipped (overlap), missed.",
                ),
                &["result"],
            )
            .expect("valid metric")
        });
        for c in [&claims, &rescued, &lost] {
            registry.register(Box::new(c.clone())).expect("unique");
        }
        registry
            .register(Box::new(attempts.clone()))
            .expect("unique");
        registry
            .register(Box::new(duration.clone()))
            .expect("unique");
        registry.register(Box::new(wait.clone())).expect("unique");
        registry
            .register(Box::new(running.clone()))
            .expect("unique");
        if let Some(t) = &ticks {
            registry.register(Box::new(t.clone())).expect("unique");
            for r in ["fired", "skipped", "missed"] {
                t.with_label_values(&[r]);
            }
        }
        for task in tasks {
            for o in OutcomeKind::ALL {
                attempts.with_label_values(&[task, o.as_str()]);
            }
            duration.with_label_values(&[task]);
            wait.with_label_values(&[task]);
        }
        WorkerMetrics {
            registry,
            attempts,
            duration,
            wait,
            claims,
            rescued,
            lost,
            running,
            ticks,
        }
    }

    /// Every metric in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec fails only on a metric family without metrics,
        // which the registry never gathers.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Meter for WorkerMetrics {
    fn claimed(&self, jobs: usize) {
        self.claims.inc_by(jobs as u64);
    }

    fn started(&self, task: &str, queue_wait: Duration) {
        self.wait
            .with_label_values(&[task])
            .observe(queue_wait.as_secs_f64());
    }

    fn finished(&self, task: &str, outcome: OutcomeKind, duration: Duration) {
        self.attempts
            .with_label_values(&[task, outcome.as_str()])
            .inc();
        self.duration
            .with_label_values(&[task])
            .observe(duration.as_secs_f64());
    }

    fn running(&self, attempts: usize) {
        self.running.set(attempts as i64);
    }

    fn rescued(&self, jobs: usize) {
        self.rescued.inc_by(jobs as u64);
    }

    fn lost(&self, leases: usize) {
        self.lost.inc_by(leases as u64);
    }

    fn ticks(&self, fired: usize, skipped: usize, missed: u64) {
        if let Some(t) = &self.ticks {
            t.with_label_values(&["fired"]).inc_by(fired as u64);
            t.with_label_values(&["skipped"]).inc_by(skipped as u64);
            t.with_label_values(&["missed"]).inc_by(missed);
        }
    }
}

/// `GET /metrics` of a worker: its [`WorkerMetrics`].
pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let Some(m) = &s.worker else {
        return Err(ApiError::not_found("this server keeps no worker's metrics"));
    };
    Ok((
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        m.render(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_lands_in_its_series_and_tasks_start_at_zero() {
        let m = WorkerMetrics::new(["cpu", "fail"], true);
        m.claimed(3);
        m.started("cpu", Duration::from_millis(2));
        m.finished("cpu", OutcomeKind::Succeeded, Duration::from_millis(30));
        m.finished("fail", OutcomeKind::Failed, Duration::from_secs(2));
        m.running(1);
        m.rescued(2);
        m.ticks(1, 0, 4);
        let text = m.render();
        for line in [
            "runyard_claims_total 3",
            "runyard_attempts_total{outcome=\"succeeded\",task=\"cpu\"} 1",
            "runyard_attempts_total{outcome=\"failed\",task=\"fail\"} 1",
            "runyard_attempts_total{outcome=\"panicked\",task=\"cpu\"} 0",
            "runyard_attempt_duration_seconds_bucket{task=\"cpu\",le=\"0.05\"} 1",
            "runyard_attempt_duration_seconds_bucket{task=\"fail\",le=\"1\"} 0",
            "runyard_attempt_duration_seconds_count{task=\"fail\"} 1",
            "runyard_queue_wait_seconds_count{task=\"cpu\"} 1",
            "runyard_queue_wait_seconds_count{task=\"fail\"} 0",
            "runyard_attempts_running 1",
            "runyard_rescued_leases_total 2",
            "runyard_lost_leases_total 0",
            "runyard_schedule_ticks_total{result=\"missed\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        let quiet = WorkerMetrics::new(["cpu"], false).render();
        assert!(!quiet.contains("runyard_schedule_ticks_total"), "{quiet}");
    }
}
