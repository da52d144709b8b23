//! The stored form of a schedule's submission: its [`NewJob`]s as JSON,
//! the same for every backend.

use crate::error::QueueError;
use crate::queue::NewJob;

/// The JSON a backend stores for a schedule's jobs.
pub fn encode_jobs(jobs: &[NewJob]) -> String {
    let _ = jobs;
    todo!("template encoding")
}

/// The jobs back from [`encode_jobs`]'s JSON.
pub fn decode_jobs(json: &str) -> Result<Vec<NewJob>, QueueError> {
    let _ = json;
    todo!("template decoding")
}
