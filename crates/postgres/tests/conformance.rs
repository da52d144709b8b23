//! The PostgreSQL queue against the conformance suite and the schedule
//! conformance suite, each test in a schema of its own on the test server
//! (see `runyard_postgres::testing`).

use std::sync::Arc;

use runyard_postgres::{PgOptions, PgQueue};
use runyard_queue::Queue;

/// The suite drives rates and ticks with its manual clock: count them on
/// it rather than on the database's.
fn on_queue_clock(url: &str) -> PgOptions {
    PgOptions::from_url(url)
        .unwrap()
        .limits_on_queue_clock(true)
        .schedules_on_queue_clock(true)
}

fn fresh(clock: Arc<dyn runyard_queue::Clock>) -> Box<dyn Queue> {
    let url = runyard_postgres::testing::server().fresh_url("conformance");
    Box::new(PgQueue::open(on_queue_clock(&url), clock).unwrap())
}

/// `n` handles on one fresh queue, each with connections of its own: what
/// `n` workers on as many machines see.
fn handles(clock: Arc<dyn runyard_queue::Clock>, n: usize) -> Vec<Box<dyn Queue>> {
    let url = runyard_postgres::testing::server().fresh_url("conformance");
    (0..n)
        .map(|_| {
            Box::new(PgQueue::open(on_queue_clock(&url), clock.clone()).unwrap()) as Box<dyn Queue>
        })
        .collect()
}

runyard_queue::conformance_tests!(fresh);
runyard_queue::schedule_conformance_tests!(fresh, handles);

/// This backend keeps every job feature the suite knows: each dependency,
/// run-at and key case above runs on it rather than being skipped.
#[test]
fn keeps_every_capability() {
    let q = fresh_for_capabilities();
    for c in runyard_queue::Capability::ALL {
        assert!(q.capabilities().has(c), "{c} is not kept");
    }
}

fn fresh_for_capabilities() -> Box<dyn runyard_queue::Queue> {
    fresh(Arc::new(runyard_queue::SystemClock))
}
