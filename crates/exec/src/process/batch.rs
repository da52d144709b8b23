//! Running a batch on a child process: send it, then wait on the child's
//! pipe and the slot's wake pipe, turning results into reports, until the
//! batch is answered or the child is gone (a crash, a timeout, a cancel:
//! see `bury`).

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{Outcome, Output, TaskError, Timestamp};
use serde_json::value::RawValue;

use super::protocol::{self, FromChild, ToChild, WireAttempt, WireOutcome, WireResult};
use super::shared::Pool;
use super::slot::{lock, Slot, SlotState};
use super::start::Child;
use crate::attempt::{Attempt, AttemptReport};
use crate::os::{self, Interest, PollFd};

/// Why a child process is gone, and whose attempt it was.
pub(super) enum Gone {
    /// It died (or broke the protocol): the running attempt's doing.
    Crashed {
        message: String,
        detail: serde_json::Value,
    },
    /// Attempt `token` ran past its timeout, `after`.
    TimedOut { token: u64, after: Duration },
    /// Attempt `token` was cancelled while it ran.
    Cancelled { token: u64 },
}

/// How often a supervisor looks at a batch with timeouts.
fn check_period(min_timeout: Duration) -> Duration {
    (min_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(50))
}

impl Pool {
    /// Sends a batch and reads its results. `Err` when the child process is
    /// gone (the batch's unanswered attempts are dealt with by `bury`).
    pub(super) fn run_batch(
        &self,
        slot: &Slot,
        child: &mut Child,
        batch: Vec<Attempt>,
    ) -> Result<(), Gone> {
        let period = batch
            .iter()
            .filter_map(|a| a.timeout)
            .min()
            .map(check_period);
        self.send_batch(slot, child, batch)?;
        let (mut starts, mut done) = (Vec::new(), Vec::new());
        loop {
            if self.check_slot(slot)? {
                return Ok(());
            }
            let mut fds = [
                PollFd::new(child.from_child.as_fd(), Interest::Read),
                PollFd::new(slot.wake_fd(), Interest::Read),
            ];
            let n = os::poll(&mut fds, period).unwrap_or(0);
            let (data, wake) = (fds[0].ready(), fds[1].ready());
            if n == 0 {
                continue;
            }
            if !data {
                if wake {
                    slot.drain_wakes();
                }
                continue;
            }
            match child.reader.fill(&mut child.from_child) {
                Ok(true) => self.read_results(slot, child, &mut starts, &mut done)?,
                Ok(false) | Err(_) => return Err(child_gone(child)),
            }
        }
    }

    /// Puts the batch in the slot and writes it to the child.
    fn send_batch(&self, slot: &Slot, child: &mut Child, batch: Vec<Attempt>) -> Result<(), Gone> {
        let mut buf = Vec::with_capacity(64 * batch.len());
        // Parents objects first, each in a frame of its own (see `protocol`).
        for a in &batch {
            if let Some(json) = &a.parents {
                ToChild::encode_parents(a.token, json, &mut buf);
            }
        }
        ToChild::Batch(batch.iter().map(wire_attempt).collect()).encode(&mut buf);
        child.shm.reset();
        {
            let mut st = lock(&slot.state);
            st.shm = Some(Arc::clone(&child.shm));
            st.batch
                .extend(batch.into_iter().enumerate().map(|(i, a)| (i as u64, a)));
        }
        let Err(e) = protocol::write_all(&mut child.to_child, &buf) else {
            return Ok(());
        };
        // The child is gone before it could read: nothing of this batch ran.
        let back: Vec<Attempt> = lock(&slot.state).batch.drain(..).map(|(_, a)| a).collect();
        self.give_back(back);
        let status = child
            .process
            .wait()
            .map(os::describe_exit)
            .unwrap_or_default();
        Err(Gone::Crashed {
            message: format!("the worker {status} ({e})"),
            detail: serde_json::Value::Null,
        })
    }

    /// Looks at the slot between waits: `Ok(true)` when the batch is
    /// answered, `Err` for a cancel of the running attempt or a timeout.
    fn check_slot(&self, slot: &Slot) -> Result<bool, Gone> {
        let mut st = lock(&slot.state);
        if st.batch.is_empty() {
            return Ok(true);
        }
        if let Some(token) = st.cancel {
            match st.batch.iter().find(|(_, a)| a.token == token) {
                // Answered meanwhile: nothing to stop.
                None => st.cancel = None,
                Some(&(i, _)) if Slot::running(&st) == Some(i) => {
                    st.cancel = None;
                    let back = Slot::stop_batch(&mut st);
                    drop(st);
                    self.give_back(back);
                    return Err(Gone::Cancelled { token });
                }
                // Not started yet: its turn comes, or its result is on its
                // way.
                Some(_) => {}
            }
        }
        match timed_out(&st) {
            Some((token, after)) => Err(Gone::TimedOut { token, after }),
            None => Ok(false),
        }
    }

    /// Reports what the child sent: starts before ends, outside the slot's
    /// lock, and what was read before a bad frame too. A child that grew
    /// too big starts nothing more of this batch: the rest comes back, and
    /// the child is replaced once the batch is answered.
    fn read_results(
        &self,
        slot: &Slot,
        child: &mut Child,
        starts: &mut Vec<(u64, Timestamp)>,
        done: &mut Vec<AttemptReport>,
    ) -> Result<(), Gone> {
        let taken = self.take_results(slot, child, starts, done);
        for (token, at) in starts.drain(..) {
            self.sink.started(token, at);
        }
        if !done.is_empty() {
            self.sink.finished(std::mem::take(done));
        }
        if let Err(message) = taken {
            return Err(Gone::Crashed {
                message,
                detail: serde_json::Value::Null,
            });
        }
        if child.above_rss(self.cfg.max_worker_rss) {
            let back = Slot::stop_batch(&mut lock(&slot.state));
            self.give_back(back);
        }
        Ok(())
    }

    /// Turns the results that have arrived into reports.
    fn take_results(
        &self,
        slot: &Slot,
        child: &mut Child,
        starts: &mut Vec<(u64, Timestamp)>,
        done: &mut Vec<AttemptReport>,
    ) -> Result<(), String> {
        let mut st = lock(&slot.state);
        loop {
            let r = match child.reader.next_from_child() {
                Ok(Some(FromChild::Result(r))) => r,
                Ok(Some(FromChild::Started { token, at })) => {
                    if st.batch.iter().any(|(_, a)| a.token == token) {
                        starts.push((token, at));
                    }
                    continue;
                }
                Ok(Some(other)) => return Err(format!("protocol error: unexpected {other:?}")),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            // A result for an attempt taken back meanwhile is dropped.
            let Some(pos) = st.batch.iter().position(|(_, a)| a.token == r.token) else {
                continue;
            };
            let (_, a) = st.batch.remove(pos).expect("found");
            child.jobs += 1;
            self.record_duration(r.duration_us);
            let (started_at, duration, outcome) = to_outcome(r);
            done.push(AttemptReport {
                token: a.token,
                started_at,
                duration,
                outcome,
            });
        }
    }
}

/// An attempt as the protocol sends it.
fn wire_attempt(a: &Attempt) -> WireAttempt {
    WireAttempt {
        token: a.token,
        task: a.task.0,
        job: a.job,
        attempt: a.number,
        params: a.params.as_json().to_string(),
        parents: a.parents.is_some(),
    }
}

/// The running attempt and its timeout, if it has passed.
fn timed_out(st: &SlotState) -> Option<(u64, Duration)> {
    let shm = st.shm.as_ref()?;
    let (started, finished, started_us) = shm.progress();
    if started <= finished {
        return None;
    }
    let (_, a) = st.batch.iter().find(|(i, _)| *i == started - 1)?;
    let t = a.timeout?;
    let ran = Timestamp::now().since(Timestamp::from_micros(started_us));
    (ran >= t).then_some((a.token, t))
}

/// The child's pipe ended: it is gone; reaps it and says how it ended.
fn child_gone(child: &mut Child) -> Gone {
    let (message, detail) = match child.process.wait() {
        Ok(s) => {
            let (code, signal) = os::exit_parts(s);
            (
                format!("the worker process {}", os::describe_exit(s)),
                serde_json::json!({"exit_code": code, "signal": signal, "pid": child.pid}),
            )
        }
        Err(e) => (
            format!("the worker process is gone: {e}"),
            serde_json::Value::Null,
        ),
    };
    Gone::Crashed { message, detail }
}

/// A result as the sink takes it.
fn to_outcome(r: WireResult) -> (Timestamp, Duration, Outcome) {
    let duration = Duration::from_micros(r.duration_us);
    let outcome = match r.outcome {
        WireOutcome::Succeeded(text) => match Output::from_json(&text) {
            Ok(out) => Outcome::Succeeded(out),
            Err(e) => Outcome::Failed(TaskError::permanent(format!(
                "the worker sent an unreadable output: {e}"
            ))),
        },
        WireOutcome::Failed {
            intent,
            message,
            detail,
        } => {
            let mut e = TaskError::with_intent(intent, message);
            if let Some(raw) = detail.and_then(|d| RawValue::from_string(d).ok()) {
                e = e.with_detail(&raw);
            }
            Outcome::Failed(e)
        }
        WireOutcome::Panicked(m) => Outcome::Panicked(m),
    };
    (r.started_at, duration, outcome)
}
