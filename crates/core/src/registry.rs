//! The registry: every task a binary can run, by name.
//!
//! Tasks defined with `#[runyard::task]` register themselves at link time
//! (through `inventory`), so any binary that links them finds them with
//! [`Registry::linked`]; child processes rely on this to run a task by
//! name. The list of linked tasks is one per process: it is built from what
//! the linker put into this executable, whichever crate asks for it.

use std::fmt;
use std::sync::Arc;

use crate::error::{RegistryError, UnknownTask};
use crate::task::TaskDef;

/// A task registered at link time by `#[runyard::task]`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    make: fn() -> TaskDef,
}

impl Registration {
    /// Used by the macro.
    pub const fn new(make: fn() -> TaskDef) -> Registration {
        Registration { make }
    }
}

inventory::collect!(Registration);

/// A task's position in its registry: a cheap handle that executors and
/// child processes pass around instead of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskIndex(pub u32);

/// Every task a binary can run, by name. Immutable once built.
pub struct Registry {
    tasks: Vec<Arc<TaskDef>>,
    by_name: rustc_hash::FxHashMap<String, TaskIndex>,
}

impl Registry {
    /// A builder, for registries made by hand.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder { tasks: Vec::new() }
    }

    /// The tasks that `#[runyard::task]` registered in this executable.
    pub fn linked() -> Result<Registry, RegistryError> {
        Registry::builder().linked().build()
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The task with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<TaskDef>> {
        self.by_name.get(name).map(|i| &self.tasks[i.0 as usize])
    }

    /// The index of the task with this name, or an error with the closest
    /// registered names.
    pub fn lookup(&self, name: &str) -> Result<TaskIndex, UnknownTask> {
        self.by_name.get(name).copied().ok_or_else(|| UnknownTask {
            name: name.to_string(),
            suggestions: self.suggest(name),
        })
    }

    /// The task at an index from [`Registry::lookup`].
    ///
    /// # Panics
    /// If the index comes from another registry and is out of range.
    pub fn task(&self, index: TaskIndex) -> &Arc<TaskDef> {
        &self.tasks[index.0 as usize]
    }

    /// Every task, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TaskDef>> {
        self.tasks.iter()
    }

    /// Up to three registered names close to `name`, best first.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = self
            .tasks
            .iter()
            .map(|t| t.name())
            .filter_map(|candidate| {
                let score = strsim::normalized_damerau_levenshtein(name, candidate).max(
                    if candidate.starts_with(name) || name.starts_with(candidate) {
                        0.7
                    } else {
                        0.0
                    },
                );
                (score >= 0.5).then_some((score, candidate))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(3)
            .map(|(_, n)| n.to_string())
            .collect()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tasks.iter().map(|t| t.name()))
            .finish()
    }
}

/// Builds a [`Registry`]; duplicate names are found by [`RegistryBuilder::build`].
#[derive(Debug)]
pub struct RegistryBuilder {
    tasks: Vec<TaskDef>,
}

impl RegistryBuilder {
    /// Adds a task.
    pub fn task(mut self, def: TaskDef) -> RegistryBuilder {
        self.tasks.push(def);
        self
    }

    /// Adds several tasks.
    pub fn tasks(mut self, defs: impl IntoIterator<Item = TaskDef>) -> RegistryBuilder {
        self.tasks.extend(defs);
        self
    }

    /// Adds every task `#[runyard::task]` registered in this executable.
    pub fn linked(mut self) -> RegistryBuilder {
        self.tasks.extend(
            inventory::iter::<Registration>
                .into_iter()
                .map(|r| (r.make)()),
        );
        self
    }

    /// Builds the registry; two tasks with one name are an error naming both.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let mut tasks = self.tasks;
        for t in &tasks {
            if let Err(problem) = crate::name::check_task_name(t.name()) {
                return Err(RegistryError::InvalidName {
                    name: t.name().chars().take(64).collect(),
                    origin: t.origin().to_string(),
                    problem,
                });
            }
        }
        // Stable sort: among duplicates, registration order decides "first".
        tasks.sort_by(|a, b| a.name().cmp(b.name()));
        for w in tasks.windows(2) {
            if w[0].name() == w[1].name() {
                return Err(RegistryError::Duplicate {
                    name: w[0].name().to_string(),
                    first: w[0].origin().to_string(),
                    second: w[1].origin().to_string(),
                });
            }
        }
        let by_name = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_string(), TaskIndex(i as u32)))
            .collect();
        Ok(Registry {
            tasks: tasks.into_iter().map(Arc::new).collect(),
            by_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Task, TaskError};

    struct Named<const N: usize>;
    impl Task for Named<0> {
        const NAME: &'static str = "resize";
        type Params = ();
        type Output = ();
        fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
            Ok(())
        }
    }
    impl Task for Named<1> {
        const NAME: &'static str = "resize";
        type Params = ();
        type Output = ();
        fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
            Ok(())
        }
    }
    impl Task for Named<2> {
        const NAME: &'static str = "rotate";
        type Params = ();
        type Output = ();
        fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
            Ok(())
        }
    }

    #[test]
    fn duplicate_names_are_an_error_naming_both() {
        let e = Registry::builder()
            .task(TaskDef::from_task(Named::<0>).with_origin("src/a.rs:10"))
            .task(TaskDef::from_task(Named::<2>))
            .task(TaskDef::from_task(Named::<1>).with_origin("src/b.rs:20"))
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "two tasks are named `resize`: src/a.rs:10 and src/b.rs:20; task names must be unique"
        );
    }

    #[test]
    fn lookup_suggests_close_names() {
        let r = Registry::builder()
            .task(TaskDef::from_task(Named::<0>))
            .task(TaskDef::from_task(Named::<2>))
            .build()
            .unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.lookup("resize").is_ok());
        let e = r.lookup("resise").unwrap_err();
        assert_eq!(e.suggestions, vec!["resize".to_string()]);
        assert!(r.lookup("zzzzzz").unwrap_err().suggestions.is_empty());
    }

    #[test]
    fn invalid_names_are_refused() {
        let e = Registry::builder()
            .task(TaskDef::from_task(Named::<0>).with_name("has space"))
            .build()
            .unwrap_err();
        assert!(matches!(e, RegistryError::InvalidName { .. }), "{e}");
    }
}
