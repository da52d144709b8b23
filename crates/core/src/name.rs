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

/// The longest a task's name may be, in bytes: long enough for any path
/// of names, short enough for every index a queue keeps on names.
pub const TASK_NAME_MAX: usize = 200;

/// Checks a task's name as a task is registered under it and as the
/// command line and the HTTP API take it: 1 to [`TASK_NAME_MAX`] bytes of
/// letters, digits, `_`, `-`, `.` and `/`. The error says what is wrong.
pub fn check_task_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a task's name must not be empty".into());
    }
    if name.len() > TASK_NAME_MAX {
        let head: String = name.chars().take(24).collect();
        return Err(format!(
            "a task's name is at most {TASK_NAME_MAX} bytes; `{head}…` has {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
    {
        return Err(format!(
            "a task's name holds letters, digits, `_`, `-`, `.` and `/`; `{name}` has {c:?}"
        ));
    }
    Ok(())
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
    fn task_names_are_checked_for_length_and_characters() {
        assert_eq!(check_task_name("resize/thumb-2.v1"), Ok(()));
        assert_eq!(check_task_name(&"x".repeat(TASK_NAME_MAX)), Ok(()));
        let long = check_task_name(&"x".repeat(TASK_NAME_MAX + 1)).unwrap_err();
        assert!(
            long.contains("at most 200 bytes") && long.contains("has 201"),
            "{long}"
        );
        assert!(check_task_name("").unwrap_err().contains("empty"));
        let bad = check_task_name("has space").unwrap_err();
        assert!(bad.contains("' '"), "{bad}");
    }

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
