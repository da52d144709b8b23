//! A task's defaults: what its jobs get unless they say otherwise, and the
//! limits the engine applies to it. The one place a new per-task setting
//! (a rate limit, a unique key) is added: a field and a setter here, a key
//! in `#[task(...)]`; [`Task`](crate::Task), [`AsyncTask`](crate::AsyncTask)
//! and [`TaskDef`](crate::TaskDef) carry the whole value.

use std::time::Duration;

use crate::flow::Rate;
use crate::retry::RetryPolicy;

/// What a task's jobs get unless they say otherwise, and how the engine
/// limits the task. Built from [`TaskDefaults::new`] (or `Default`) and its
/// setters, so that a new setting is never a breaking change:
///
/// ```
/// use std::time::Duration;
/// use runyard_core::{RetryPolicy, TaskDefaults};
///
/// let d = TaskDefaults::new()
///     .policy(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
///     .timeout(Duration::from_secs(30))
///     .worker_concurrency(4);
/// assert_eq!(d.policy.max_attempts, 3);
/// assert_eq!(d.worker_concurrency, Some(4));
/// assert!(!d.isolate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TaskDefaults {
    /// The retry policy of its jobs (default: [`RetryPolicy::default`]).
    pub policy: RetryPolicy,
    /// The longest one attempt may run (default: no limit).
    pub timeout: Option<Duration>,
    /// Whether `auto` mode runs its attempts in a child process (default:
    /// no).
    pub isolate: bool,
    /// The most attempts of this task that one engine runs at once (e.g. at
    /// most 20 requests to one service); `None` is no limit beyond the
    /// engine's own. A cap per engine, not per queue: two workers on one
    /// queue may run twice as many.
    pub worker_concurrency: Option<u32>,
    /// The most attempts of the task at once across every worker of a
    /// queue (`#[task(queue_concurrency = N)]`); a limit stored in the
    /// queue for the task beats it.
    pub queue_concurrency: Option<u32>,
    /// The most starts of the task per window across every worker of a
    /// queue (`#[task(rate = "10/s")]`); a stored rate beats it.
    pub rate: Option<Rate>,
}

impl TaskDefaults {
    /// Nothing beyond the engine's own defaults.
    pub const fn new() -> TaskDefaults {
        TaskDefaults {
            policy: RetryPolicy::DEFAULT,
            timeout: None,
            isolate: false,
            worker_concurrency: None,
            queue_concurrency: None,
            rate: None,
        }
    }

    /// Sets the retry policy.
    pub const fn policy(mut self, policy: RetryPolicy) -> TaskDefaults {
        self.policy = policy;
        self
    }

    /// Sets the per-attempt timeout.
    pub const fn timeout(mut self, timeout: Duration) -> TaskDefaults {
        self.timeout = Some(timeout);
        self
    }

    /// Sets whether `auto` mode isolates it in a child process.
    pub const fn isolate(mut self, isolate: bool) -> TaskDefaults {
        self.isolate = isolate;
        self
    }

    /// Sets the most attempts of it that one engine runs at once.
    pub const fn worker_concurrency(mut self, n: u32) -> TaskDefaults {
        self.worker_concurrency = Some(n);
        self
    }
}

impl TaskDefaults {
    /// With at most `n` attempts at once across the queue.
    pub const fn queue_concurrency(mut self, n: u32) -> TaskDefaults {
        self.queue_concurrency = Some(n);
        self
    }

    /// With at most `rate` starts per window across the queue.
    pub const fn rate(mut self, rate: Rate) -> TaskDefaults {
        self.rate = Some(rate);
        self
    }
}

impl Default for TaskDefaults {
    fn default() -> TaskDefaults {
        TaskDefaults::new()
    }
}
