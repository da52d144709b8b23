//! The SQLite queue against the conformance suite, each test on a file of its own.

use std::sync::Arc;

use runyard_queue::Queue;
use runyard_sqlite::{OpenMode, SqliteQueue};

fn fresh(clock: Arc<dyn runyard_queue::Clock>) -> Box<dyn Queue> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("queue.db");
    let q = SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock).unwrap();
    // Kept under target/tmp (the queue needs its file for as long as it lives).
    std::mem::forget(dir);
    Box::new(q)
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
