//! Routing a claimed job: its task in this engine's registry and the lane
//! its attempt runs in, or why this engine cannot run it at all (such a job
//! is dead, permanently: another run would refuse it the same way).

use std::sync::Arc;
use std::time::Instant;

use runyard_core::{JobSettings, TaskIndex, Timestamp};
use runyard_queue::{Claimed, Lease, TaskName};

use super::entry::{Entry, Rare, Stage};
use crate::lane::{lane_for, Lane};
use crate::shared::EngineInner;

/// A claimed job this engine cannot run.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) lease: Lease,
    pub(super) task: TaskName,
    pub(super) ready_at: Timestamp,
    pub(super) message: String,
}

/// Routes claimed jobs, remembering the last task looked up (claims come
/// in runs of one task) and the last settings seen: the entries of jobs
/// with the same settings share one copy.
#[derive(Debug, Default)]
pub(super) struct Router {
    last_task: Option<(TaskName, TaskIndex)>,
    last_settings: Option<Arc<JobSettings>>,
}

impl Router {
    fn task_index(&mut self, engine: &EngineInner, name: &TaskName) -> Option<TaskIndex> {
        if let Some((n, i)) = &self.last_task {
            if n == name {
                return Some(*i);
            }
        }
        let i = engine.registry.lookup(name).ok()?;
        self.last_task = Some((name.clone(), i));
        Some(i)
    }

    /// `settings`, shared with the last entry's if they are the same.
    fn shared(&mut self, settings: JobSettings) -> Arc<JobSettings> {
        match &self.last_settings {
            Some(s) if **s == settings => Arc::clone(s),
            _ => Arc::clone(self.last_settings.insert(Arc::new(settings))),
        }
    }

    /// The entry for a claimed job, waiting in its lane; `claimed_at` is
    /// when its claim was asked for.
    pub(super) fn route(
        &mut self,
        engine: &EngineInner,
        c: Claimed,
        claimed_at: Instant,
    ) -> Result<Entry, Refused> {
        let lease = c.lease();
        let Claimed {
            task,
            params,
            settings,
            ready_at,
            parents,
            admitted_at,
            schedule,
            ..
        } = c;
        let refuse = |task, message| Refused {
            lease,
            task,
            ready_at,
            message,
        };
        let Some(idx) = self.task_index(engine, &task) else {
            let msg = format!("no task named `{task}` is registered in this worker");
            return Err(refuse(task, msg));
        };
        let lane = match lane_of(engine, idx, &settings) {
            Ok(l) => l,
            Err(msg) => return Err(refuse(task, msg)),
        };
        // Jobs without parents or an admitted start (most) allocate
        // nothing for them.
        let parents = (!parents.is_none()).then(|| Arc::from(parents.as_json()));
        let rare = (parents.is_some() || admitted_at.is_some()).then(|| {
            Box::new(Rare {
                parents,
                admitted_at,
            })
        });
        Ok(Entry {
            lease,
            task: idx,
            lane,
            settings: self.shared(settings),
            ready_at,
            stage: Stage::Waiting { params },
            cancel_requested: false,
            claimed_at,
            schedule: schedule.map(Box::new),
            span: None,
            rare,
        })
    }
}

/// The lane of a job of `task` with `settings`, or why this engine cannot
/// run it.
fn lane_of(engine: &EngineInner, task: TaskIndex, settings: &JobSettings) -> Result<Lane, String> {
    let def = engine.registry.task(task);
    match lane_for(settings.mode, def, settings.isolate) {
        Ok(Lane::Process) if !engine.process_available => {
            Err("worker processes are not available in this build".to_string())
        }
        Ok(l) => Ok(l),
        Err(e) => Err(e.to_string()),
    }
}
