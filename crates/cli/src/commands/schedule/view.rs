//! A schedule as `schedule list` and `status` show it: its JSON object
//! and its line.

use runyard::JobState;
use runyard_core::{Policy, Spec, Timestamp};
use runyard_queue::ScheduleInfo;
use serde::Serialize;

/// A schedule in `schedule list --json` and `status --json`.
#[derive(Debug, Serialize)]
pub(crate) struct ScheduleView {
    pub(crate) name: String,
    /// `cron "EXPR"` or `every 15m`.
    pub(crate) spec: String,
    /// `cron` or `every`.
    pub(crate) kind: &'static str,
    /// The cron expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cron: Option<String>,
    /// The interval, e.g. `15m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) every: Option<String>,
    /// A cron expression's IANA zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) zone: Option<String>,
    #[serde(flatten)]
    pub(crate) policy: Policy,
    pub(crate) paused: bool,
    /// Its next tick, as the workers will fire it (`null`: none, or paused).
    pub(crate) next_tick: Option<Timestamp>,
    /// Every tick up to this one is settled.
    pub(crate) last_tick: Timestamp,
    /// The last submission: its tick, its first job and that job's state.
    pub(crate) last_fire: Option<LastFire>,
    pub(crate) fired: u64,
    pub(crate) skipped: u64,
    pub(crate) missed: u64,
    /// The tasks of each tick's jobs, in order.
    pub(crate) tasks: Vec<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

#[derive(Debug, Serialize)]
pub(crate) struct LastFire {
    pub(crate) tick: Timestamp,
    pub(crate) job: u64,
    /// `null` once the job has been deleted.
    pub(crate) state: Option<JobState>,
}

impl From<&ScheduleInfo> for ScheduleView {
    fn from(s: &ScheduleInfo) -> ScheduleView {
        let d = &s.def;
        let (kind, cron, every) = match &d.spec {
            Spec::Cron(c) => ("cron", Some(c.expr().to_string()), None),
            Spec::Every { every, .. } => (
                "every",
                None,
                Some(runyard::duration::format_duration(*every)),
            ),
        };
        ScheduleView {
            name: d.name.clone(),
            spec: d.spec.describe(),
            kind,
            cron,
            every,
            zone: d.spec.zone().map(str::to_string),
            policy: d.policy,
            paused: s.paused,
            next_tick: s.next_tick,
            last_tick: s.last_tick,
            last_fire: s.last_fire.map(|(tick, job)| LastFire {
                tick,
                job: job.0,
                state: s.last_state,
            }),
            fired: s.fired,
            skipped: s.skipped,
            missed: s.missed,
            tasks: d.jobs.iter().map(|j| j.task.to_string()).collect(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

impl ScheduleView {
    /// The next tick in words: its time, or `none`.
    pub(crate) fn next_text(&self) -> String {
        self.next_tick
            .map_or_else(|| "none".into(), |t| t.to_string())
    }

    /// The last fire in words: `TICK #JOB STATE`, or `-`.
    pub(crate) fn last_text(&self) -> String {
        match &self.last_fire {
            Some(f) => format!(
                "{} #{} {}",
                f.tick,
                f.job,
                f.state.map_or("deleted", |s| s.as_str())
            ),
            None => "-".into(),
        }
    }
}

/// The lines of a table of schedules: a header, then one line each.
pub(crate) fn table(views: &[ScheduleView]) -> Vec<String> {
    let w = |f: &dyn Fn(&ScheduleView) -> usize, min: usize| {
        views.iter().map(f).max().unwrap_or(0).max(min)
    };
    let name_w = w(&|v| v.name.len(), 4);
    let spec_w = w(&|v| v.spec.chars().count(), 4);
    let zone_w = w(&|v| v.zone.as_deref().map_or(1, str::len), 4);
    let next_w = w(&|v| v.next_text().len(), 9);
    let mut out = vec![format!(
        "{:<name_w$}  {:<spec_w$}  {:<zone_w$}  {:<next_w$}  {:<6}  {}",
        "name", "spec", "zone", "next tick", "paused", "last fire"
    )];
    for v in views {
        out.push(format!(
            "{:<name_w$}  {:<spec_w$}  {:<zone_w$}  {:<next_w$}  {:<6}  {}",
            v.name,
            v.spec,
            v.zone.as_deref().unwrap_or("-"),
            v.next_text(),
            if v.paused { "yes" } else { "no" },
            v.last_text()
        ));
    }
    out
}
