//! Enqueueing from async code never blocks the runtime's thread: with the
//! file's write lock held by another connection, the future stays pending
//! (a blocking enqueue would hold the only thread of a current-thread
//! runtime until the lock came free) and completes once it is released.

use std::time::{Duration, Instant};

use runyard_queue::conformance::job;
use runyard_queue::Queue;
use runyard_sqlite::{OpenMode, SqliteQueue};

#[tokio::test]
async fn a_locked_file_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = SqliteQueue::open(&path, OpenMode::CreateOrOpen).unwrap();
    // Start the enqueueing thread, so that opening its connection is done.
    q.enqueue_async(vec![job("t", 1, 0)]).await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut pending = q.enqueue_async(vec![job("t", 1, 0), job("t", 1, 0)]);
    let t = Instant::now();
    let early = tokio::time::timeout(Duration::from_millis(200), &mut pending).await;
    assert!(early.is_err(), "pending while the file is locked");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the runtime's thread was not held: {:?}",
        t.elapsed()
    );
    other.execute_batch("COMMIT").unwrap();
    let out = pending.await.unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(q.counts().unwrap().queued, 3);
}
