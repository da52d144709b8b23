//! Conformance cases for what a job's view carries besides its state and
//! attempts: the settings it runs with, when it may start, its keys.

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{FlowKey, JobKeys, JobParams, JobSettings, JobState, Mode, OnConflict, Unique};

use super::support::{fresh, view, Factory, LEASE};
use crate::{Capability, NewJob};

/// A job's view shows the settings it was submitted with, its keys as
/// written, and while it waits (queued or scheduled) when it may start;
/// once running, no run-at.
pub fn a_job_s_view_carries_its_settings_run_at_and_keys(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let q = &*q;
    let settings = JobSettings {
        max_attempts: 3,
        backoff: "exponential:50ms,cap=1s".parse().unwrap(),
        timeout: Some(Duration::from_secs(2)),
        priority: 5,
        mode: Mode::Thread,
        isolate: false,
    };
    let mut keyed = NewJob::new(
        "keyed".into(),
        JobParams::empty(),
        Arc::new(settings.clone()),
    );
    let caps = q.capabilities();
    let mut want_keys = JobKeys::default();
    if caps.has(Capability::UniqueJobs) {
        keyed.unique = Some(Unique {
            key: "sync-42".into(),
            within: None,
            on_conflict: OnConflict::Skip,
        });
        want_keys.unique = Some("sync-42".into());
    }
    if caps.has(Capability::Limits) {
        keyed.limits.concurrency_key = Some((FlowKey::new("tenant", "42").unwrap(), Some(2)));
        keyed.limits.rate_key = Some((FlowKey::new("api", "").unwrap(), None));
        want_keys.concurrency = Some("tenant:42".into());
        want_keys.rate = Some("api".into());
    }
    let mut later = NewJob::new(
        "later".into(),
        JobParams::empty(),
        Arc::new(settings.clone()),
    );
    let at = q.now() + Duration::from_secs(3600);
    let has_run_at = caps.has(Capability::RunAt);
    if has_run_at {
        later.run_at = Some(at);
    }
    let e = q.enqueue(vec![keyed, later]).unwrap();
    let (k, l) = (view(q, e[0].id()), view(q, e[1].id()));
    for v in [&k, &l] {
        if let Some(s) = &v.settings {
            assert_eq!(s, &settings, "job {}: settings", v.id);
        }
    }
    assert!(
        k.settings.is_some(),
        "a job listed from the current schema has its settings"
    );
    assert_eq!(k.keys, want_keys);
    assert_eq!(l.keys, JobKeys::default());
    assert_eq!(k.state, JobState::Queued);
    assert!(
        k.run_at.is_some_and(|t| t <= q.now()),
        "queued: due {:?}",
        k.run_at
    );
    if has_run_at {
        assert_eq!((l.state, l.run_at), (JobState::Scheduled, Some(at)));
    }
    // The keys and settings show in the listing too, as JSON.
    let json = serde_json::to_value(&k).unwrap();
    assert_eq!(json["settings"]["max_attempts"], 3);
    assert_eq!(json["settings"]["priority"], 5);
    if caps.has(Capability::Limits) {
        assert_eq!(json["keys"]["concurrency"], "tenant:42");
    }
    let c = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(c.id, k.id);
    q.started("w", &[(c.lease(), q.now())]).unwrap();
    let running = view(q, k.id);
    assert_eq!((running.state, running.run_at), (JobState::Running, None));
    assert_eq!(running.keys, want_keys, "a running job keeps its keys");
}
