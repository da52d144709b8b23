//! The in-memory queue against the conformance suite.

use runyard_queue::MemoryQueue;

runyard_queue::conformance_tests!(|clock| Box::new(MemoryQueue::with_clock(clock)));
