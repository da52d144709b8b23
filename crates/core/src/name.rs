//! Task names as jobs carry them.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A task's name, cheap to clone: names known at compile time (every task
/// defined with the macro, every built-in) are `&'static str` and cost
/// nothing to copy; others are shared. Millions of jobs of one task never
/// contend on a reference count.
#[derive(Clone)]
pub struct TaskName(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl TaskName {
    /// A name known at compile time.
    pub const fn from_static(s: &'static str) -> TaskName {
        TaskName(Repr::Static(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

impl Deref for TaskName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for TaskName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TaskName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for TaskName {
    fn eq(&self, other: &TaskName) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        std::ptr::eq(a, b) || a == b
    }
}

impl Eq for TaskName {}

impl PartialEq<str> for TaskName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialOrd for TaskName {
    fn partial_cmp(&self, other: &TaskName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskName {
    fn cmp(&self, other: &TaskName) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for TaskName {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for TaskName {
    fn from(s: &str) -> TaskName {
        TaskName(Repr::Shared(s.into()))
    }
}

impl From<String> for TaskName {
    fn from(s: String) -> TaskName {
        TaskName(Repr::Shared(s.into()))
    }
}

impl From<Arc<str>> for TaskName {
    fn from(s: Arc<str>) -> TaskName {
        TaskName(Repr::Shared(s))
    }
}

impl From<Cow<'static, str>> for TaskName {
    fn from(s: Cow<'static, str>) -> TaskName {
        match s {
            Cow::Borrowed(s) => TaskName::from_static(s),
            Cow::Owned(s) => s.into(),
        }
    }
}

impl Serialize for TaskName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_by_text_whatever_their_storage() {
        let a = TaskName::from_static("cpu");
        let b = TaskName::from("cpu".to_string());
        assert_eq!(a, b);
        assert_eq!(&*a, "cpu");
        let mut m = std::collections::HashMap::new();
        m.insert(a, 1);
        assert_eq!(m.get("cpu"), Some(&1));
        assert_eq!(m.get(&b), Some(&1));
    }
}
