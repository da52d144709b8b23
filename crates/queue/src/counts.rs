//! [`Counts`]: jobs per state, as every backend counts them.

use runyard_core::JobState;

/// Jobs per state.
///
/// A job claimed ahead of time whose attempt has not started (it waits for
/// a thread or a worker process) is counted `queued`, never `running`: as
/// far as a queue knows, an attempt starts when its worker says so
/// ([`Queue::started`](crate::Queue::started)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Waiting to be claimed, or claimed and not started.
    pub queued: u64,
    /// Waiting for their run-at.
    pub scheduled: u64,
    /// Waiting for the jobs they are after.
    #[serde(default)]
    pub blocked: u64,
    /// Running: claimed, and the attempt has started.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl Counts {
    /// Every job.
    pub fn total(&self) -> u64 {
        self.unfinished() + self.succeeded + self.dead + self.cancelled
    }

    /// Jobs not yet in a terminal state.
    pub fn unfinished(&self) -> u64 {
        self.queued + self.scheduled + self.blocked + self.running
    }

    /// The count for one state.
    pub fn get(&self, s: JobState) -> u64 {
        match s {
            JobState::Queued => self.queued,
            JobState::Scheduled => self.scheduled,
            JobState::Blocked => self.blocked,
            JobState::Running => self.running,
            JobState::Succeeded => self.succeeded,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// The count for one state, to change it.
    pub fn get_mut(&mut self, s: JobState) -> &mut u64 {
        match s {
            JobState::Queued => &mut self.queued,
            JobState::Scheduled => &mut self.scheduled,
            JobState::Blocked => &mut self.blocked,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        }
    }
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        for s in JobState::ALL {
            *self.get_mut(s) += other.get(s);
        }
    }
}
