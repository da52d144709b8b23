//! Workflows from Rust: steps of typed jobs, each after earlier steps (or
//! jobs already in the queue), submitted as one batch.
//!
//! A [`Workflow`] is built step by step: [`Workflow::add`] adds a step of
//! one job, [`Workflow::add_many`] a step of several copies (a fan-out: a
//! step after it waits for every copy and sees their outputs as a list, in
//! order). Each returns the step's handle ([`Step`], `Copy`), whose
//! [`Step::after`], [`Step::after_job`] and [`Step::run_if`] say what it
//! waits for and when it runs. A step can only be after steps added before
//! it, so a workflow has no cycles; names are unique. Problems are kept as
//! they are found and reported, with everything else checked
//! ([`Engine::prepare`](crate::Engine::prepare) for every job), before
//! anything is enqueued: [`Run::submit_workflow`](crate::Run::submit_workflow)
//! and [`Engine::enqueue_workflow`](crate::Engine::enqueue_workflow).
//!
//! The batch holds the steps in order, each step's copies together; a
//! job's edges to an earlier step are [`Parent::Batch`] indices into it,
//! keyed by the step's name (see [`runyard_core::Parents`]).

use std::cell::RefCell;
use std::fmt;

use runyard_core::{After, JobId, JobSpec, Parent, RunIf};
use runyard_queue::{Enqueued, NewJob};

use crate::error::{SubmitError, WorkflowError};

/// A workflow being built (see the module). Not shared between threads
/// while it is built; submitting reads it.
#[derive(Default)]
pub struct Workflow {
    steps: RefCell<Vec<StepDef>>,
    /// The first problem found while building, reported at submit.
    problem: RefCell<Option<WorkflowError>>,
}

struct StepDef {
    name: String,
    jobs: Vec<JobSpec>,
    many: bool,
    after: Vec<Edge>,
    run_if: RunIf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Step(usize),
    Job(JobId),
}

/// A step of a [`Workflow`]: its handle, to say what it is after and to
/// find its jobs' ids once submitted ([`WorkflowIds::of`]).
#[derive(Clone, Copy)]
pub struct Step<'w> {
    wf: &'w Workflow,
    index: usize,
}

impl Workflow {
    /// An empty workflow.
    pub fn new() -> Workflow {
        Workflow::default()
    }

    /// Adds a step of one job, named `name`: a step after it sees this
    /// job's output under that name.
    pub fn add(&self, name: impl Into<String>, job: JobSpec) -> Step<'_> {
        self.push(name.into(), vec![job], false)
    }

    /// Adds a step of several copies, named `name` (a fan-out): a step
    /// after it waits for all of them and sees their outputs under that
    /// name as a list, in the order given here.
    pub fn add_many(
        &self,
        name: impl Into<String>,
        jobs: impl IntoIterator<Item = JobSpec>,
    ) -> Step<'_> {
        let name = name.into();
        let jobs: Vec<JobSpec> = jobs.into_iter().collect();
        if jobs.is_empty() {
            self.found(WorkflowError::NoJobs { step: name.clone() });
        }
        self.push(name, jobs, true)
    }

    fn push(&self, name: String, jobs: Vec<JobSpec>, many: bool) -> Step<'_> {
        if let Some(reason) = bad_name(&name) {
            self.found(WorkflowError::BadName {
                name: name.clone(),
                reason,
            });
        } else if self.steps.borrow().iter().any(|s| s.name == name) {
            self.found(WorkflowError::DuplicateName { name: name.clone() });
        }
        let mut steps = self.steps.borrow_mut();
        steps.push(StepDef {
            name,
            jobs,
            many,
            after: Vec::new(),
            run_if: RunIf::Success,
        });
        Step {
            wf: self,
            index: steps.len() - 1,
        }
    }

    /// Keeps the first problem found.
    fn found(&self, e: WorkflowError) {
        self.problem.borrow_mut().get_or_insert(e);
    }

    /// How many steps it has.
    pub fn steps(&self) -> usize {
        self.steps.borrow().len()
    }

    /// How many jobs it has, every copy counted.
    pub fn jobs(&self) -> usize {
        self.steps.borrow().iter().map(|s| s.jobs.len()).sum()
    }

    /// The first problem found while it was built, if any.
    pub fn check(&self) -> Result<(), WorkflowError> {
        match &*self.problem.borrow() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Its jobs as one batch, each checked by `prepare`, with their names,
    /// edges and `run_if`; and how the batch is laid out by step.
    pub(crate) fn prepare(
        &self,
        prepare: impl Fn(&JobSpec) -> Result<NewJob, SubmitError>,
    ) -> Result<(Vec<NewJob>, Layout), SubmitError> {
        self.check()?;
        let steps = self.steps.borrow();
        let mut starts = Vec::with_capacity(steps.len());
        let mut at = 0;
        for s in steps.iter() {
            starts.push(at);
            at += s.jobs.len();
        }
        let mut batch = Vec::with_capacity(at);
        for s in steps.iter() {
            let mut after = Vec::new();
            for edge in &s.after {
                match *edge {
                    Edge::Step(p) => {
                        let parent = &steps[p];
                        after.extend((0..parent.jobs.len()).map(|j| After {
                            parent: Parent::Batch(starts[p] + j),
                            key: parent.name.clone(),
                            many: parent.many,
                        }))
                    }
                    Edge::Job(id) => after.push(After::job(id)),
                }
            }
            for (copy, spec) in s.jobs.iter().enumerate() {
                let mut job = prepare(spec).map_err(|error| SubmitError::Step {
                    step: s.name.clone(),
                    copy: copy + 1,
                    copies: s.jobs.len(),
                    error: Box::new(error),
                })?;
                job.name = Some(s.name.clone());
                job.after = after.clone();
                job.run_if = s.run_if;
                batch.push(job);
            }
        }
        let layout = Layout {
            steps: steps
                .iter()
                .zip(&starts)
                .map(|(s, &start)| (s.name.clone(), start, s.jobs.len()))
                .collect(),
        };
        Ok((batch, layout))
    }
}

/// Why `name` cannot name a step, if it cannot.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        Some("a name of digits only would read as a job id (give it a letter)")
    } else {
        None
    }
}

impl fmt::Debug for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = self.steps.borrow();
        f.debug_struct("Workflow")
            .field(
                "steps",
                &steps
                    .iter()
                    .map(|s| (&s.name, s.jobs.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'w> Step<'w> {
    /// This step is after `steps` (added before it, in this workflow): it
    /// waits for each of their jobs and sees their outputs under their
    /// names. Steps given twice count once.
    pub fn after(self, steps: &[Step<'_>]) -> Step<'w> {
        for s in steps {
            let problem = if !std::ptr::eq(s.wf, self.wf) {
                Some(WorkflowError::Foreign { step: self.name() })
            } else if s.index >= self.index {
                Some(WorkflowError::Later {
                    step: self.name(),
                    after: s.name(),
                })
            } else {
                None
            };
            match problem {
                Some(e) => self.wf.found(e),
                None => self.add_edge(Edge::Step(s.index)),
            }
        }
        self
    }

    /// This step is after the job `id`, already in the queue: it sees its
    /// output under its id (as text, e.g. `"17"`).
    pub fn after_job(self, id: JobId) -> Step<'w> {
        self.add_edge(Edge::Job(id));
        self
    }

    /// When this step runs once what it is after has ended (by default
    /// only when all of it succeeded).
    pub fn run_if(self, run_if: RunIf) -> Step<'w> {
        self.wf.steps.borrow_mut()[self.index].run_if = run_if;
        self
    }

    /// The step's name.
    pub fn name(&self) -> String {
        self.wf.steps.borrow()[self.index].name.clone()
    }

    fn add_edge(&self, e: Edge) {
        let mut steps = self.wf.steps.borrow_mut();
        let after = &mut steps[self.index].after;
        if !after.contains(&e) {
            after.push(e);
        }
    }
}

impl fmt::Debug for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Step").field(&self.name()).finish()
    }
}

/// Where each step's jobs are in the batch: name, first index, copies.
#[derive(Debug)]
pub(crate) struct Layout {
    steps: Vec<(String, usize, usize)>,
}

impl Layout {
    /// The ids of each step's jobs, from the batch's results.
    pub(crate) fn ids(self, enqueued: &[Enqueued]) -> WorkflowIds {
        WorkflowIds {
            steps: self
                .steps
                .into_iter()
                .map(|(name, start, n)| {
                    let ids = enqueued[start..start + n].iter().map(|e| e.id()).collect();
                    (name, ids)
                })
                .collect(),
        }
    }
}

/// The ids of a submitted workflow's jobs, by step, copies in order. A job
/// that already existed (by its idempotency key) is given by the id it
/// had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowIds {
    steps: Vec<(String, Vec<JobId>)>,
}

impl WorkflowIds {
    /// The ids of `step`'s jobs (a step of the workflow submitted).
    ///
    /// # Panics
    ///
    /// If the step is not of the workflow these ids are from.
    pub fn of(&self, step: Step<'_>) -> &[JobId] {
        &self.steps[step.index].1
    }

    /// The ids of the step named `name`, if there is one.
    pub fn named(&self, name: &str) -> Option<&[JobId]> {
        self.steps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ids)| ids.as_slice())
    }

    /// Each step's name and ids, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[JobId])> {
        self.steps
            .iter()
            .map(|(n, ids)| (n.as_str(), ids.as_slice()))
    }

    /// Every id, in submission order.
    pub fn all(&self) -> Vec<JobId> {
        self.steps
            .iter()
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use runyard_core::{Backoff, JobSettings, Mode, UnknownTask};
    use runyard_queue::TaskName;

    use super::*;

    fn prepare(spec: &JobSpec) -> Result<NewJob, SubmitError> {
        let settings = JobSettings {
            max_attempts: 1,
            backoff: Backoff::None,
            timeout: None,
            priority: 0,
            mode: Mode::Auto,
            isolate: false,
        };
        Ok(NewJob::new(
            TaskName::from_static("noop"),
            spec.params.clone(),
            Arc::new(settings),
        ))
    }

    #[test]
    fn a_fan_out_and_fan_in_become_one_batch_with_edges_by_index() {
        let wf = Workflow::new();
        let e = wf.add("extract", JobSpec::new("noop"));
        let t = wf
            .add_many("transform", (0..3).map(|_| JobSpec::new("noop")))
            .after(&[e]);
        let l = wf
            .add("load", JobSpec::new("noop"))
            .after(&[t, t])
            .after_job(JobId(40))
            .run_if(RunIf::Always);
        assert_eq!((wf.steps(), wf.jobs()), (3, 5));
        let (batch, layout) = wf.prepare(prepare).unwrap();
        assert_eq!(batch.len(), 5);
        assert_eq!(batch[0].after, vec![]);
        for j in &batch[1..4] {
            assert_eq!(j.name.as_deref(), Some("transform"));
            assert_eq!(j.after.len(), 1);
            assert_eq!(j.after[0].parent, Parent::Batch(0));
            assert!(!j.after[0].many);
        }
        let load = &batch[4];
        assert_eq!(load.run_if, RunIf::Always);
        let parents: Vec<_> = load
            .after
            .iter()
            .map(|a| (a.parent, a.key.as_str(), a.many))
            .collect();
        assert_eq!(
            parents,
            vec![
                (Parent::Batch(1), "transform", true),
                (Parent::Batch(2), "transform", true),
                (Parent::Batch(3), "transform", true),
                (Parent::Job(JobId(40)), "40", false),
            ]
        );
        let ids = layout.ids(&(1..=5).map(|i| Enqueued::New(JobId(i))).collect::<Vec<_>>());
        assert_eq!(ids.of(t), &[JobId(2), JobId(3), JobId(4)]);
        assert_eq!(ids.of(l), &[JobId(5)]);
        assert_eq!(ids.named("extract"), Some(&[JobId(1)][..]));
        assert_eq!(ids.all().len(), 5);
    }

    #[test]
    fn bad_workflows_are_refused_naming_the_step() {
        let wf = Workflow::new();
        wf.add("a", JobSpec::new("noop"));
        wf.add("a", JobSpec::new("noop"));
        assert_eq!(
            wf.check(),
            Err(WorkflowError::DuplicateName { name: "a".into() })
        );
        assert!(matches!(
            wf.prepare(prepare),
            Err(SubmitError::Workflow(WorkflowError::DuplicateName { .. }))
        ));

        let wf = Workflow::new();
        let a = wf.add("a", JobSpec::new("noop"));
        let b = wf.add("b", JobSpec::new("noop"));
        a.after(&[b]);
        let e = wf.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "step `a` cannot be after `b`, which was added after it: a step is only after steps added before it"
        );
        b.after(&[b]);

        let other = Workflow::new();
        let x = other.add("x", JobSpec::new("noop"));
        let wf = Workflow::new();
        wf.add("y", JobSpec::new("noop")).after(&[x]);
        assert!(matches!(wf.check(), Err(WorkflowError::Foreign { .. })));

        let wf = Workflow::new();
        wf.add_many("none", Vec::new());
        assert!(matches!(wf.check(), Err(WorkflowError::NoJobs { .. })));
        let wf = Workflow::new();
        wf.add("17", JobSpec::new("noop"));
        assert!(matches!(wf.check(), Err(WorkflowError::BadName { .. })));
    }

    #[test]
    fn a_job_refused_is_named_by_its_step_and_copy() {
        let wf = Workflow::new();
        wf.add_many(
            "t",
            (0..3).map(|i| JobSpec::new(if i == 1 { "nope" } else { "noop" })),
        );
        let e = wf
            .prepare(|s| {
                if s.task == "nope" {
                    Err(SubmitError::UnknownTask(UnknownTask {
                        name: s.task.clone(),
                        suggestions: Vec::new(),
                    }))
                } else {
                    prepare(s)
                }
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "job 2 of 3 of workflow step `t`");
    }
}
