//! The in-memory queue against the conformance suite.

use runyard_queue::MemoryQueue;

runyard_queue::conformance_tests!(|clock| Box::new(MemoryQueue::with_clock(clock)));

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
    Box::new(runyard_queue::MemoryQueue::new())
}
