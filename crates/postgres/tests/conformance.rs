//! The PostgreSQL queue against the conformance suite, each test in a
//! schema of its own on the test server (see `runyard_postgres::testing`).

use std::sync::Arc;

use runyard_postgres::{PgOptions, PgQueue};
use runyard_queue::Queue;

fn fresh(clock: Arc<dyn runyard_queue::Clock>) -> Box<dyn Queue> {
    let url = runyard_postgres::testing::server().fresh_url("conformance");
    let opts = PgOptions::from_url(&url).unwrap();
    Box::new(PgQueue::open(opts, clock).unwrap())
}

runyard_queue::conformance_tests!(fresh);
