//! `runyard status --job ID`: one job in full: its state, every attempt
//! (outcome, times, the whole error), its output, the jobs it is after and
//! the jobs after it (each with its name and state), and, for a job
//! cancelled by a job it was after, that job; for a job a schedule made,
//! the schedule and the tick.

use std::fmt::Write as _;

use runyard::queue::Queue;
use runyard::report::JobView;
use runyard::{JobId, JobState};
use serde::Serialize;
use serde_json::Value;

use crate::output::human::{cancel_reason, Human};

/// A job linked to the one shown: its id, name and state (`None` for a
/// job since pruned).
#[derive(Debug, Serialize)]
struct Link {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    state: Option<JobState>,
}

/// The job `id` of `queue`, as JSON (the report's job object, with `after`
/// and `dependents` as [`Link`]s) or for people; `None` when there is no
/// such job.
pub(super) fn show(
    queue: &dyn Queue,
    id: JobId,
    json: bool,
    human: &Human,
) -> anyhow::Result<Option<String>> {
    let inspect = queue.inspect()?;
    let Some(v) = inspect.get(id)? else {
        return Ok(None);
    };
    let link = |id: JobId| -> anyhow::Result<Link> {
        let other = inspect.get(id)?;
        Ok(Link {
            id: id.0,
            name: other.as_ref().and_then(|o| o.name.clone()),
            state: other.map(|o| o.state),
        })
    };
    let after = v
        .after
        .iter()
        .map(|p| link(*p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dependents = inspect
        .dependents(id)?
        .into_iter()
        .map(link)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cause_state = match &v.cancelled_by {
        Some(c) => inspect.get(c.job)?.map(|o| o.state),
        None => None,
    };
    let hold = match queue.as_flow() {
        Some(f) if !v.state.is_terminal() && v.state != JobState::Running => f.hold(id)?,
        _ => None,
    };
    if json {
        let mut out = serde_json::to_value(&v)?;
        if let Value::Object(m) = &mut out {
            m.insert("after".into(), serde_json::to_value(&after)?);
            m.insert("dependents".into(), serde_json::to_value(&dependents)?);
            if let Some(h) = &hold {
                m.insert("hold".into(), serde_json::to_value(h)?);
                m.insert("held".into(), super::super::flow::hold_text(h).into());
            }
        }
        return Ok(Some(serde_json::to_string_pretty(&out)? + "\n"));
    }
    let mut text = render(&v, &after, &dependents, cause_state, human);
    if let Some(h) = &hold {
        let _ = writeln!(text, "  held        {}", super::super::flow::hold_text(h));
    }
    Ok(Some(text))
}

fn render(
    v: &JobView,
    after: &[Link],
    dependents: &[Link],
    cause_state: Option<JobState>,
    human: &Human,
) -> String {
    let mut out = String::new();
    let name = v
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}",
        human.bold(&format!("job {}{name}: {}, {}", v.id, v.task, v.state))
    );
    if let Some(why) = cancel_reason(v, |_| cause_state) {
        let _ = writeln!(out, "  {why}");
    }
    let _ = writeln!(out, "  params      {}", v.params.as_json());
    let _ = writeln!(out, "  enqueued    {}", v.enqueued_at);
    if let Some(t) = &v.schedule {
        let _ = writeln!(out, "  schedule    {}, tick {}", t.schedule, t.tick);
    }
    if !v.after.is_empty() {
        let _ = writeln!(out, "  run_if      {}", v.run_if);
    }
    let links = |l: &[Link]| {
        if l.is_empty() {
            return "none".to_string();
        }
        l.iter()
            .map(|l| {
                let name = l
                    .name
                    .as_deref()
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default();
                let state = l.state.map_or("pruned".to_string(), |s| s.to_string());
                format!("#{}{name} ({state})", l.id)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "  after       {}", links(after));
    let _ = writeln!(out, "  dependents  {}", links(dependents));
    if v.attempts.is_empty() {
        let _ = writeln!(out, "  no attempts");
    }
    for a in &v.attempts {
        let _ = writeln!(
            out,
            "  attempt {}: {} at {}, ran {}, waited {}",
            a.number,
            a.outcome,
            a.started_at,
            runyard::duration::human_duration(a.duration()),
            runyard::duration::human_duration(a.queued())
        );
        if let Some(e) = a.error_message() {
            for line in e.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if !v.output.is_none() {
        let _ = writeln!(out, "  output      {}", v.output.as_json());
    }
    out
}
