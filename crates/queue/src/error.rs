//! Queue errors.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure a [`QueueError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueErrorKind {
    /// The store could not be reached or is busy; the operation may succeed
    /// if tried again (a dropped connection, a locked database).
    Unavailable,
    /// The store holds something that is not a runyard queue, or is damaged.
    Corrupt,
    /// The store was written by a newer (or unknown) schema version.
    Incompatible,
    /// The store cannot be written (a read-only file or role).
    ReadOnly,
    /// The request itself was invalid (an unknown job id, a bad filter).
    InvalidInput,
    /// Another worker holds what this one needs: its name was taken over
    /// by a worker that started while this one's heartbeat had lapsed.
    Conflict,
    /// The queue lacks what the request needs: a job feature it does not
    /// keep (see [`Capability`](crate::Capability)), or administration or
    /// inspection. The message names it.
    Unsupported,
    /// Any other failure of the store.
    Storage,
}

/// An operation on a queue failed.
///
/// Its message says every cause once: the underlying error and the causes
/// of its own chain, leaving out any that the text before already says
/// (drivers often repeat a cause in their own message, or wrap it in one
/// that only names its category). So a `QueueError` ends an error chain:
/// [`source`](StdError::source) is `None`, and [`QueueError::get_ref`]
/// gives the underlying error.
#[derive(Debug)]
pub struct QueueError {
    kind: QueueErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl QueueError {
    /// An error of `kind` with a message.
    pub fn new(kind: QueueErrorKind, message: impl Into<String>) -> QueueError {
        QueueError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(
        kind: QueueErrorKind,
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> QueueError {
        QueueError {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The kind.
    pub fn kind(&self) -> QueueErrorKind {
        self.kind
    }

    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        self.kind == QueueErrorKind::Unavailable
    }

    /// The underlying error (of the driver, the file system), if any.
    pub fn get_ref(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.message.clone();
        let mut cause = self
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static));
        while let Some(c) = cause {
            let said = c.to_string();
            if !said.is_empty() && !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = c.source();
        }
        f.write_str(&text)
    }
}

impl StdError for QueueError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that repeats its cause in its own message, as some drivers do.
    #[derive(Debug)]
    struct Wrapper(&'static str, Option<Box<Wrapper>>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|w| w as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let chain = Wrapper(
            "db error",
            Some(Box::new(Wrapper(
                "FATAL: no such role",
                Some(Box::new(Wrapper("no such role", None))),
            ))),
        );
        let e = QueueError::with_source(QueueErrorKind::Storage, "PostgreSQL: connecting", chain);
        assert_eq!(
            e.to_string(),
            "PostgreSQL: connecting: db error: FATAL: no such role"
        );
        assert!(e.source().is_none(), "the message says it all");
        assert_eq!(e.get_ref().unwrap().to_string(), "db error");
        let locked = Wrapper(
            "database is locked",
            Some(Box::new(Wrapper("database is locked", None))),
        );
        let e = QueueError::with_source(QueueErrorKind::Unavailable, "SQLite", locked);
        assert_eq!(e.to_string(), "SQLite: database is locked");
    }
}
