//! What `limit`, `task` and `status` share of flow control: a queue's
//! [`FlowControl`], and stored limits and holds in words.

use runyard::queue::Queue;
use runyard_core::{HeldJobs, Hold, StoredLimit};
use runyard_queue::{FlowControl, QueueErrorKind};

use crate::exit::UsageError;
use crate::queues::QueueUrl;

/// The flow control of `queue` (named `url`), or a refusal that says the
/// queue keeps none.
pub(crate) fn flow_of<'q>(
    queue: &'q dyn Queue,
    url: &QueueUrl,
    command: &str,
) -> anyhow::Result<&'q dyn FlowControl> {
    match queue.flow() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == QueueErrorKind::Unsupported => Err(UsageError(format!(
            "`runyard {command}`: {} keeps no limits and cannot pause tasks ({e}): this needs a \
             queue that keeps flow control (docs/flow-control.md)",
            url.display()
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// A stored limit in words: `task `cpu`: at most 4 at once, 10/s`.
pub(crate) fn limit_line(l: &StoredLimit) -> String {
    let mut parts = Vec::new();
    if let Some(c) = l.concurrency {
        parts.push(format!("at most {c} at once"));
    }
    if let Some(r) = l.rate {
        parts.push(format!("at most {r}"));
    }
    if parts.is_empty() {
        parts.push("nothing".into());
    }
    format!("{}: {}", l.target, parts.join(", "))
}

/// What holds a job, in words: `concurrency limit of key `tenant` (2 at once)`.
pub(crate) fn hold_text(h: &Hold) -> String {
    match h {
        Hold::Paused { task } => format!("paused (task `{task}`)"),
        Hold::Concurrency { target, limit } => {
            format!("concurrency limit of {target} ({limit} at once)")
        }
        Hold::Rate { target, rate } => format!("rate limit of {target} ({rate})"),
        Hold::Dependencies => "blocked on dependencies".into(),
    }
}

/// What holds the jobs of `queue` that could run but do not, now: the
/// reasons of its flow control (for a queue that keeps it), then the
/// blocked jobs. A queue that cannot answer holds nothing it can tell.
pub(crate) fn held_now(queue: &dyn Queue) -> Vec<HeldJobs> {
    let mut held: Vec<HeldJobs> = queue
        .as_flow()
        .and_then(|f| f.holds().ok())
        .map(|h| {
            h.held
                .into_iter()
                .map(|(hold, jobs)| HeldJobs { hold, jobs })
                .collect()
        })
        .unwrap_or_default();
    if let Ok(c) = queue.counts() {
        if c.blocked > 0 {
            held.push(HeldJobs {
                hold: Hold::Dependencies,
                jobs: c.blocked,
            });
        }
    }
    held
}

/// Held jobs in words: `2 by the concurrency limit of task `sleep` (1 at
/// once), 1 blocked on dependencies`.
pub(crate) fn held_text(held: &[HeldJobs]) -> String {
    let parts: Vec<String> = held
        .iter()
        .map(|h| match h.hold {
            Hold::Dependencies => format!("{} blocked on dependencies", h.jobs),
            Hold::Paused { .. } => format!("{} {}", h.jobs, hold_text(&h.hold)),
            _ => format!("{} by the {}", h.jobs, hold_text(&h.hold)),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use runyard_core::LimitTarget;

    #[test]
    fn holds_and_limits_read_as_words() {
        let key = LimitTarget::Key {
            name: "tenant".into(),
            value: None,
        };
        assert_eq!(
            hold_text(&Hold::Concurrency {
                target: key.clone(),
                limit: 2
            }),
            "concurrency limit of key `tenant` (each value) (2 at once)"
        );
        assert_eq!(hold_text(&Hold::Dependencies), "blocked on dependencies");
        let l = StoredLimit {
            target: LimitTarget::Task("cpu".into()),
            concurrency: Some(4),
            rate: Some("10/s".parse().unwrap()),
        };
        assert_eq!(
            limit_line(&l),
            "task `cpu`: at most 4 at once, at most 10/s"
        );
    }

    #[test]
    fn held_jobs_read_as_words() {
        let held = [
            HeldJobs {
                hold: Hold::Rate {
                    target: LimitTarget::Task("http".into()),
                    rate: "1/h".parse().unwrap(),
                },
                jobs: 3,
            },
            HeldJobs {
                hold: Hold::Paused { task: "cpu".into() },
                jobs: 2,
            },
            HeldJobs {
                hold: Hold::Dependencies,
                jobs: 1,
            },
        ];
        assert_eq!(
            held_text(&held),
            "3 by the rate limit of task `http` (1/h), 2 paused (task `cpu`), \
             1 blocked on dependencies"
        );
        assert_eq!(held_text(&[]), "");
    }
}
