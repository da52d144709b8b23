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
    /// Any other failure of the store.
    Storage,
}

/// An operation on a queue failed.
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
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StdError for QueueError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
