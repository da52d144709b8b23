//! How a `run` on a state file says that it will report the file's jobs:
//! while it runs (and until its report is written) it is registered in
//! the queue as a live worker named `run:HOST:PID`, its registration
//! renewed by a thread of its own. `runyard serve` refuses to delete jobs
//! while such a worker is live: the run's report must show every job it
//! ran, once. A run that dies stops renewing; its registration lapses
//! after [`LEASE`].

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use runyard::queue::{host_name, Queue, WorkerInfo};

/// How long after its last renewal a run's registration lapses.
pub(crate) const LEASE: Duration = Duration::from_secs(15);

/// The registration of a run; dropped, it ends (at once, not by lapsing).
pub(crate) struct Reporting {
    name: String,
    queue: Weak<dyn Queue>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reporting {
    /// Registers this run on `queue`. A queue that keeps no workers, or
    /// that refuses, leaves the run unregistered: it runs all the same.
    pub(crate) fn start(queue: &Arc<dyn Queue>) -> Option<Reporting> {
        let name = format!("run:{}:{}", host_name(), std::process::id());
        let me = WorkerInfo::this_process(name.clone(), LEASE);
        if !matches!(queue.register_worker(&me), Ok(Ok(()))) {
            return None;
        }
        let (stop, stopped) = channel::<()>();
        let weak = Arc::downgrade(queue);
        let (w, n) = (weak.clone(), name.clone());
        let thread = std::thread::Builder::new()
            .name("runyard-reporting".into())
            .spawn(move || {
                // Renewed three times a lease; an empty heartbeat renews
                // the registration alone.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE / 3) {
                    let Some(q) = w.upgrade() else { return };
                    let _ = q.heartbeat(&n, &[], LEASE);
                }
            })
            .ok()?;
        Some(Reporting {
            name,
            queue: weak,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(q) = self.queue.upgrade() {
            let _ = q.unregister_worker(&self.name);
        }
    }
}
