//! What `limit`, `task` and `status` share of flow control: a queue's
//! [`FlowControl`], and stored limits and holds in words.

use runyard::queue::Queue;
use runyard_core::{Hold, StoredLimit};
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
}
