//! `sleep` / `io`: waits, the original design's stand-in for IO.

use std::time::Duration;

use runyard::{AsyncTask, Context, Task, TaskError};
use serde::{Deserialize, Serialize};

/// Parameters of `sleep`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields, default)]
pub struct SleepParams {
    /// How long to wait, e.g. "250ms", "1s".
    #[serde(with = "runyard::duration::serde_duration")]
    pub duration: Duration,
    /// Keep sleeping when cancelled (to see how each mode deals with code
    /// that ignores its timeout).
    pub ignore_cancel: bool,
}

impl Default for SleepParams {
    fn default() -> SleepParams {
        SleepParams {
            duration: Duration::from_secs(1),
            ignore_cancel: false,
        }
    }
}

/// `sleep`: waits for `duration`. Async on tokio; on a thread (thread and
/// process modes) it sleeps on its context, so a timeout wakes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

const DESCRIPTION: &str =
    "Waits for `duration` (IO-like; async on tokio, a cancellable sleep on threads)";

impl AsyncTask for Sleep {
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str = DESCRIPTION;
    type Params = SleepParams;
    type Output = ();

    async fn run(&self, p: SleepParams, _ctx: Context) -> Result<(), TaskError> {
        if p.ignore_cancel {
            // Blocks the runtime thread: exactly what async code must not do.
            std::thread::sleep(p.duration);
        } else {
            tokio::time::sleep(p.duration).await;
        }
        Ok(())
    }
}

impl Task for Sleep {
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str = DESCRIPTION;
    type Params = SleepParams;
    type Output = ();

    fn run(&self, p: SleepParams, ctx: &Context) -> Result<(), TaskError> {
        if p.ignore_cancel {
            std::thread::sleep(p.duration);
            Ok(())
        } else {
            ctx.sleep(p.duration)
        }
    }
}
