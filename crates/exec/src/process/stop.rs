//! Stopping a child process: politely when it is idle (recycling, the
//! pool's end), or with SIGTERM then SIGKILL when it runs an attempt (a
//! timeout, a cancel); either way with the commands it started.

use std::time::{Duration, Instant};

use super::protocol::{self, ToChild};
use super::shared::Pool;
use super::slot::Slot;
use super::start::Child;
use crate::os;

impl Pool {
    /// Ends a child process that is running an attempt, with the commands
    /// it started: SIGTERM to its process group and to theirs, then, after
    /// the grace, SIGKILL to whatever is left of any of them.
    pub(super) fn end_gracefully(&self, slot: &Slot, child: &mut Child) {
        let deadline = Instant::now() + self.cfg.kill_grace;
        if let Some(g) = &slot.groups {
            g.signal_all(libc::SIGTERM);
        }
        let _ = os::stop_group(&mut child.process, self.cfg.kill_grace);
        // The child is gone (it seldom outlives a SIGTERM); its commands
        // have what is left of the grace.
        if let Some(g) = &slot.groups {
            while g.any_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        slot.end_commands();
    }

    /// Asks an idle child process to exit, and makes sure it does, and
    /// that nothing it started is left.
    pub(super) fn stop(&self, slot: &Slot, mut child: Child) {
        let mut b = Vec::new();
        ToChild::Shutdown.encode(&mut b);
        let _ = protocol::write_all(&mut child.to_child, &b);
        let deadline = Instant::now() + self.cfg.kill_grace;
        let exited = loop {
            if let Ok(Some(_)) = child.process.try_wait() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !exited {
            let _ = os::stop_group(&mut child.process, Duration::ZERO);
        }
        slot.end_commands();
    }
}
