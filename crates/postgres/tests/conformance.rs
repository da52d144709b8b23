//! The PostgreSQL queue against the conformance suite, each test in a
//! schema of its own on the test server (see `runyard_postgres::testing`).

use std::sync::Arc;

use runyard_postgres::{PgOptions, PgQueue};
use runyard_queue::Queue;

fn fresh(clock: Arc<dyn runyard_queue::Clock>) -> Box<dyn Queue> {
    let url = runyard_postgres::testing::server().fresh_url("conformance");
    // The suite drives rates with its manual clock: count them on it.
    let opts = PgOptions::from_url(&url)
        .unwrap()
        .limits_on_queue_clock(true);
    Box::new(PgQueue::open(opts, clock).unwrap())
}

runyard_queue::conformance_tests!(fresh);

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
