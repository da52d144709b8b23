//! Burying a child process that is gone (crashed, timed out, or killed to
//! cancel): its running attempt is reported, the rest of its batch runs
//! elsewhere.

use std::collections::VecDeque;

use runyard_core::{Outcome, Timestamp};

use super::batch::Gone;
use super::shared::Pool;
use super::slot::{lock, Slot};
use super::start::Child;
use crate::attempt::{Attempt, AttemptReport};

impl Pool {
    /// Ends what is left of a gone child and reports its running attempt;
    /// the rest of its batch is given back. With nothing running to blame,
    /// the batch's first attempt is blamed only when `blame_first` (crashes
    /// outside attempts, again and again, must not loop). Returns whether
    /// an attempt was blamed.
    pub(super) fn bury(
        &self,
        slot: &Slot,
        mut child: Child,
        gone: Gone,
        blame_first: bool,
    ) -> bool {
        // Nothing more starts, whatever the child is doing.
        child.shm.stop();
        let target = match gone {
            Gone::TimedOut { token, .. } | Gone::Cancelled { token } => {
                self.end_gracefully(slot, &mut child);
                Some(token)
            }
            Gone::Crashed { .. } => {
                child.kill();
                slot.end_commands();
                None
            }
        };
        let (started, finished, started_us) = child.shm.progress();
        let running = (started > finished).then(|| started - 1);
        let mut rest: VecDeque<(u64, Attempt)> = {
            let mut st = lock(&slot.state);
            st.cancel = None;
            st.shm = None;
            st.batch.drain(..).collect()
        };
        // A timeout or a cancel names its attempt (it may have ended in the
        // moment before the kill: its result died with the child); a crash
        // is the running attempt's.
        let blamed = match target {
            Some(token) => rest.iter().position(|(_, a)| a.token == token),
            None => running.and_then(|r| rest.iter().position(|(i, _)| *i == r)),
        };
        let blamed = match blamed {
            Some(pos) => rest.remove(pos),
            None if blame_first => rest.pop_front(),
            None => None,
        };
        if let Some((_, a)) = &blamed {
            let started_at = Timestamp::from_micros(started_us);
            self.sink.finished(vec![AttemptReport {
                token: a.token,
                started_at,
                duration: Timestamp::now().since(started_at),
                outcome: outcome_of(gone),
            }]);
        }
        // Not started, or ended with a result that died with the child:
        // they run again elsewhere.
        self.give_back(rest.into_iter().map(|(_, a)| a).collect());
        blamed.is_some()
    }
}

/// The outcome of the attempt a gone child is blamed for.
fn outcome_of(gone: Gone) -> Outcome {
    match gone {
        Gone::Crashed { message, detail } => Outcome::Crashed {
            message,
            detail: (!detail.is_null())
                .then(|| serde_json::value::to_raw_value(&detail).ok())
                .flatten(),
        },
        Gone::TimedOut { after, .. } => Outcome::TimedOut(after),
        Gone::Cancelled { .. } => Outcome::Cancelled,
    }
}
