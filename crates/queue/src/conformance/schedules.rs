//! Conformance cases for schedules (the [`Schedules`] capability and
//! `docs/backends.md` §9): when a tick fires, that it fires once however
//! many handles call [`Schedules::fire_due`] at once, what the policy does
//! with late and overlapping ticks, pausing, firing by hand, changing and
//! removing a schedule, and the mark a fired job carries.
//!
//! A backend that keeps schedules runs them with
//! [`schedule_conformance_tests!`](crate::schedule_conformance_tests). Every
//! case moves the queue's [`ManualClock`]: no case sleeps.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use runyard_core::{
    After, CatchUp, JobId, JobState, OnConflict, Output, Overlap, Parent, Policy, Spec, Tick,
    Timestamp, Unique,
};

use super::support::{job, record, view, Factory, LEASE};
use crate::{
    Claimed, Clock, Completion, FireReport, Fired, ManualClock, NewJob, Put, Queue, QueueErrorKind,
    ScheduleDef, ScheduleInfo, Schedules, Verdict,
};

/// Makes `n` handles on one fresh, empty store, all reading the given
/// clock: what `n` worker processes on one queue see.
pub type Handles<'a> = &'a (dyn Fn(Arc<dyn Clock>, usize) -> Vec<Box<dyn Queue>> + Sync);

/// The time every case starts at (a whole minute).
const START: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

/// `START` plus `s` seconds.
fn at(s: u64) -> Timestamp {
    START.saturating_add(Duration::from_secs(s))
}

fn fresh(make: Factory<'_>) -> (Arc<ManualClock>, Box<dyn Queue>) {
    let clock = Arc::new(ManualClock::new(START));
    let q = make(clock.clone());
    (clock, q)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Every `s` seconds (the anchor given is ignored: the queue anchors an
/// interval at its own time).
fn every(s: u64) -> Spec {
    Spec::every(secs(s), Timestamp::EPOCH).expect("a valid interval")
}

fn def(name: &str, spec: Spec, policy: Policy, jobs: Vec<NewJob>) -> ScheduleDef {
    ScheduleDef {
        name: name.to_string(),
        spec,
        policy,
        jobs,
    }
}

/// A schedule of one job of task `t`, on the default policy.
fn simple(name: &str, spec: Spec) -> ScheduleDef {
    def(name, spec, Policy::default(), vec![job("t", 3, 0)])
}

fn sched(q: &dyn Queue) -> &dyn Schedules {
    q.schedules().expect("the queue keeps schedules")
}

fn put(q: &dyn Queue, d: &ScheduleDef) -> Put {
    sched(q).put_schedule(d).expect("the schedule is stored")
}

fn fire(q: &dyn Queue) -> FireReport {
    sched(q).fire_due().expect("fire_due")
}

fn info(q: &dyn Queue, name: &str) -> ScheduleInfo {
    sched(q)
        .schedule(name)
        .unwrap()
        .unwrap_or_else(|| panic!("schedule {name} exists"))
}

/// The ticks fired for `name`, in the report's order.
fn ticks(r: &FireReport, name: &str) -> Vec<Timestamp> {
    r.fired
        .iter()
        .filter(|f| f.schedule == name)
        .map(|f| f.tick)
        .collect()
}

fn skipped(r: &FireReport, name: &str) -> Vec<Timestamp> {
    r.skipped
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, t)| *t)
        .collect()
}

fn missed(r: &FireReport, name: &str) -> u64 {
    r.missed
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, m)| *m)
        .sum()
}

fn mark(name: &str, tick: Timestamp) -> Option<Tick> {
    Some(Tick {
        schedule: name.to_string(),
        tick,
    })
}

/// Claims everything ready for worker `w`, started.
fn claim_started(q: &dyn Queue) -> Vec<Claimed> {
    let c = q.claim("w", 1000, LEASE).unwrap();
    let starts: Vec<_> = c.iter().map(|c| (c.lease(), q.now())).collect();
    q.started("w", &starts).unwrap();
    c
}

fn end(q: &dyn Queue, c: &Claimed, verdict: Verdict) {
    let outcome = match verdict {
        Verdict::Succeeded(_) => runyard_core::OutcomeKind::Succeeded,
        Verdict::Cancelled => runyard_core::OutcomeKind::Cancelled,
        Verdict::Retry { .. } | Verdict::Dead => runyard_core::OutcomeKind::Failed,
    };
    let done = Completion {
        lease: c.lease(),
        record: record(q, c.lease(), outcome),
        verdict,
    };
    let r = q.complete("w", &[done]).unwrap();
    assert_eq!(r.results, vec![Ok(())], "job {} was recorded", c.id);
}

fn total_jobs(q: &dyn Queue) -> u64 {
    q.counts().unwrap().total()
}

pub fn nothing_fires_before_the_first_tick(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    assert_eq!(put(q, &simple("s", every(10))), Put::Added);
    let r = fire(q);
    assert!(r.fired.is_empty() && r.skipped.is_empty() && r.missed.is_empty());
    assert_eq!(r.now, START);
    assert_eq!(r.next, Some(at(10)), "one interval after it was added");
    clock.advance(Duration::from_micros(9_999_999));
    let r = fire(q);
    assert!(r.fired.is_empty(), "a microsecond before the tick: {r:?}");
    assert_eq!(r.next, Some(at(10)));
    assert_eq!(total_jobs(q), 0, "no job was made");
    let i = info(q, "s");
    assert_eq!((i.last_tick, i.next_tick), (START, Some(at(10))));
    assert_eq!((i.fired, i.skipped, i.missed), (0, 0, 0));
    assert_eq!((i.last_fire, i.last_state), (None, None));
}

pub fn a_tick_fires_once_and_its_job_carries_the_tick(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    put(q, &simple("s", every(10)));
    clock.advance(secs(10));
    let r = fire(q);
    assert_eq!(r.fired.len(), 1, "{r:?}");
    let f = &r.fired[0];
    assert_eq!((f.schedule.as_str(), f.tick), ("s", at(10)));
    assert_eq!(f.jobs.len(), 1);
    assert_eq!((r.now, r.next), (at(10), Some(at(20))));
    let id = f.jobs[0];
    assert!(fire(q).fired.is_empty(), "a tick fires once");
    assert_eq!(total_jobs(q), 1);

    let v = view(q, id);
    assert_eq!(v.schedule, mark("s", at(10)), "the view carries the tick");
    assert_eq!(v.state, JobState::Queued);
    let i = info(q, "s");
    assert_eq!(i.last_fire, Some((at(10), id)));
    assert_eq!(i.last_state, Some(JobState::Queued));
    assert_eq!((i.last_tick, i.next_tick), (at(10), Some(at(20))));
    assert_eq!((i.fired, i.skipped, i.missed), (1, 0, 0));

    let c = claim_started(q);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, id);
    assert_eq!(
        c[0].schedule,
        mark("s", at(10)),
        "the claim carries the tick"
    );
    assert_eq!(&*c[0].task, "t");
    assert_eq!(c[0].settings.max_attempts, 3);
    assert_eq!(info(q, "s").last_state, Some(JobState::Running));
    end(q, &c[0], Verdict::Succeeded(Output::none()));
    assert_eq!(info(q, "s").last_state, Some(JobState::Succeeded));
    assert!(
        fire(q).fired.is_empty(),
        "an ended job does not fire it again"
    );

    clock.advance(secs(10));
    let r = fire(q);
    assert_eq!(ticks(&r, "s"), vec![at(20)], "the next tick");
    assert_ne!(r.fired[0].jobs[0], id, "a new job");
}

/// Handles on one store calling `fire_due` at the same moment make one
/// submission per tick: `handles` gives them when the backend can open
/// several; without it, threads share one handle.
pub fn concurrent_firing_makes_one_submission_per_tick(
    make: Factory<'_>,
    handles: Option<Handles<'_>>,
) {
    const N: usize = 4;
    const ROUNDS: u64 = 6;
    let clock = Arc::new(ManualClock::new(START));
    let qs: Vec<Box<dyn Queue>> = match handles {
        Some(h) => h(clock.clone(), N),
        None => vec![make(clock.clone())],
    };
    assert!(!qs.is_empty());
    let q0 = &*qs[0];
    for n in ["a", "b"] {
        put(q0, &simple(n, every(10)));
    }
    let mut seen: Vec<(String, Timestamp)> = Vec::new();
    for round in 1..=ROUNDS {
        clock.advance(secs(10));
        let barrier = Barrier::new(N);
        let reports: Vec<FireReport> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..N)
                .map(|i| {
                    let q = &*qs[i % qs.len()];
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        fire(q)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let fired: Vec<&Fired> = reports.iter().flat_map(|r| &r.fired).collect();
        let mut got: Vec<(String, Timestamp)> =
            fired.iter().map(|f| (f.schedule.clone(), f.tick)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), at(10 * round)),
                ("b".to_string(), at(10 * round))
            ],
            "round {round}: one submission per schedule and tick, from {} handle(s)",
            qs.len()
        );
        seen.extend(got);
    }
    assert_eq!(total_jobs(q0), 2 * ROUNDS, "one job per tick, no more");
    for q in &qs {
        let i = info(&**q, "a");
        assert_eq!(i.fired, ROUNDS, "every handle sees the same counters");
        assert_eq!(i.last_tick, at(10 * ROUNDS));
    }
    let claimed = q0.claim("w", 1000, LEASE).unwrap();
    let mut marks: Vec<Tick> = claimed.into_iter().filter_map(|c| c.schedule).collect();
    marks.sort_by(|x, y| (&x.schedule, x.tick).cmp(&(&y.schedule, y.tick)));
    seen.sort();
    let want: Vec<Tick> = seen
        .into_iter()
        .map(|(schedule, tick)| Tick { schedule, tick })
        .collect();
    assert_eq!(marks, want, "each job carries its own tick");
}

/// Random clock steps, pauses and concurrent `fire_due` calls from several
/// handles: under `catch_up = all` with room for every missed tick, each
/// tick of every schedule is fired exactly once, none lost, none twice,
/// in order, and each job carries its own tick.
pub fn random_firing_settles_every_tick_once(make: Factory<'_>, handles: Option<Handles<'_>>) {
    const HANDLES: usize = 3;
    let clock = Arc::new(ManualClock::new(START));
    let qs: Vec<Box<dyn Queue>> = match handles {
        Some(h) => h(clock.clone(), HANDLES),
        None => vec![make(clock.clone())],
    };
    let q0 = &*qs[0];
    let all = Policy {
        overlap: Overlap::Allow,
        misfire_grace: secs(60),
        catch_up: CatchUp::All,
        catch_up_max: 10_000,
    };
    let intervals = [1u64, 3, 7, 10];
    let names: Vec<String> = (0..intervals.len()).map(|i| format!("s{i}")).collect();
    for (n, e) in names.iter().zip(intervals) {
        put(q0, &def(n, every(e), all, vec![job("t", 1, 0)]));
    }
    let mut rng = fastrand::Rng::with_seed(0x5c4e_d01e);
    let mut fired: Vec<Fired> = Vec::new();
    let mut paused = vec![false; names.len()];
    for _ in 0..150 {
        match rng.u8(0..10) {
            0 => {
                let i = rng.usize(0..names.len());
                paused[i] = !paused[i];
                let q = &*qs[rng.usize(0..qs.len())];
                assert!(sched(q).pause_schedule(&names[i], paused[i]).unwrap());
            }
            1..=4 => clock.advance(Duration::from_millis(rng.u64(0..15_000))),
            _ => {
                let (a, b) = (rng.usize(0..qs.len()), rng.usize(0..qs.len()));
                let reports: Vec<FireReport> = std::thread::scope(|s| {
                    let ta = s.spawn(|| fire(&*qs[a]));
                    let tb = s.spawn(|| fire(&*qs[b]));
                    vec![ta.join().unwrap(), tb.join().unwrap()]
                });
                for r in reports {
                    assert!(r.missed.is_empty(), "catch-up has room for all: {r:?}");
                    assert!(r.skipped.is_empty());
                    fired.extend(r.fired);
                }
            }
        }
    }
    for n in &names {
        sched(q0).pause_schedule(n, false).unwrap();
    }
    fired.extend(fire(q0).fired);
    let now = q0.now();
    let mut jobs = 0;
    for (n, e) in names.iter().zip(intervals) {
        let mut got: Vec<Timestamp> = fired
            .iter()
            .filter(|f| &f.schedule == n)
            .map(|f| f.tick)
            .collect();
        got.sort();
        let want: Vec<Timestamp> = (1..).map(|k| at(k * e)).take_while(|t| *t <= now).collect();
        assert_eq!(got, want, "schedule {n}: every tick up to now, once");
        jobs += want.len() as u64;
        let i = info(q0, n);
        assert_eq!((i.fired, i.missed, i.skipped), (want.len() as u64, 0, 0));
    }
    assert_eq!(total_jobs(q0), jobs, "one job per tick");
    for f in &fired {
        assert_eq!(view(q0, f.jobs[0]).schedule, mark(&f.schedule, f.tick));
    }
}

pub fn missed_ticks_follow_catch_up_after_the_clock_jumps(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let policy = |catch_up, catch_up_max| Policy {
        misfire_grace: secs(15),
        catch_up,
        catch_up_max,
        ..Policy::default()
    };
    for (name, p) in [
        ("none", policy(CatchUp::None, 100)),
        ("latest", policy(CatchUp::Latest, 100)),
        ("all", policy(CatchUp::All, 3)),
        ("all-of-them", policy(CatchUp::All, 100)),
    ] {
        put(q, &def(name, every(10), p, vec![job("t", 1, 0)]));
    }
    // No worker for 100 s: ticks 10..=100; 90 and 100 are within the grace
    // (85..=100), the eight before are missed.
    clock.advance(secs(100));
    let r = fire(q);
    assert_eq!(ticks(&r, "none"), vec![at(90), at(100)]);
    assert_eq!(missed(&r, "none"), 8);
    assert_eq!(ticks(&r, "latest"), vec![at(80), at(90), at(100)]);
    assert_eq!(missed(&r, "latest"), 7);
    assert_eq!(
        ticks(&r, "all"),
        vec![at(60), at(70), at(80), at(90), at(100)],
        "the latest catch_up_max missed ticks, then those on time"
    );
    assert_eq!(missed(&r, "all"), 5);
    assert_eq!(
        ticks(&r, "all-of-them"),
        (1..=10).map(|k| at(10 * k)).collect::<Vec<_>>()
    );
    assert_eq!(missed(&r, "all-of-them"), 0);
    assert_eq!(total_jobs(q), 2 + 3 + 5 + 10, "one job per tick fired");
    let i = info(q, "all");
    assert_eq!((i.fired, i.skipped, i.missed), (5, 0, 5));
    assert_eq!((i.last_tick, i.next_tick), (at(100), Some(at(110))));
    assert_eq!(i.last_fire.map(|f| f.0), Some(at(100)));
    let i = info(q, "none");
    assert_eq!((i.fired, i.missed), (2, 8));
    // Settled for good: nothing is fired again, and the next tick is on time.
    assert!(fire(q).fired.is_empty());
    clock.advance(secs(10));
    let r = fire(q);
    for name in ["none", "latest", "all", "all-of-them"] {
        assert_eq!(ticks(&r, name), vec![at(110)], "{name}");
        assert_eq!(missed(&r, name), 0);
    }
}

pub fn overlap_skip_waits_for_the_last_job_to_end(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let skip = Policy {
        overlap: Overlap::Skip,
        ..Policy::default()
    };
    put(q, &def("s", every(10), skip, vec![job("t", 3, 0)]));
    clock.advance(secs(10));
    let first = fire(q);
    assert_eq!(ticks(&first, "s"), vec![at(10)]);
    let id = first.fired[0].jobs[0];

    // Queued: skipped.
    clock.advance(secs(10));
    let r = fire(q);
    assert!(r.fired.is_empty());
    assert_eq!(skipped(&r, "s"), vec![at(20)], "skipped while it is queued");

    // Running: skipped.
    let c = claim_started(q);
    assert_eq!(c[0].id, id);
    clock.advance(secs(10));
    assert_eq!(
        skipped(&fire(q), "s"),
        vec![at(30)],
        "skipped while it runs"
    );

    // Waiting for a retry (at 50): still unfinished.
    end(
        q,
        &c[0],
        Verdict::Retry {
            at: q.now().saturating_add(secs(20)),
        },
    );
    assert_eq!(view(q, id).state, JobState::Scheduled);
    clock.advance(secs(10));
    let r = fire(q);
    assert!(
        r.fired.is_empty(),
        "a job waiting for a retry has not ended"
    );
    assert_eq!(skipped(&r, "s"), vec![at(40)]);

    // Ended: the next tick fires.
    clock.advance(secs(60));
    let c = claim_started(q);
    assert_eq!(c[0].id, id);
    assert_eq!(c[0].schedule, mark("s", at(10)), "a retry keeps its tick");
    end(q, &c[0], Verdict::Succeeded(Output::none()));
    clock.set(at(105));
    // Ticks 50..=100 are due, all within the grace: the plan fires them,
    // and overlap = skip fires the latest of them only.
    let r = fire(q);
    assert_eq!(ticks(&r, "s"), vec![at(100)], "only the latest fires");
    assert_eq!(
        skipped(&r, "s"),
        (5..10).map(|k| at(10 * k)).collect::<Vec<_>>(),
        "the earlier ones are skipped, not fired later"
    );
    let i = info(q, "s");
    assert_eq!((i.fired, i.skipped, i.missed), (2, 8, 0));
    assert_eq!(i.last_fire.map(|f| f.0), Some(at(100)));
    assert_eq!(i.last_state, Some(JobState::Queued));
    assert_eq!(total_jobs(q), 2);
}

pub fn overlap_allow_fires_while_the_last_job_runs(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    put(q, &simple("s", every(10)));
    clock.advance(secs(10));
    fire(q);
    let c = claim_started(q);
    assert_eq!(c.len(), 1);
    clock.advance(secs(10));
    let r = fire(q);
    assert_eq!(
        ticks(&r, "s"),
        vec![at(20)],
        "overlap = allow (the default)"
    );
    assert!(r.skipped.is_empty());
}

pub fn a_paused_schedule_fires_nothing_and_resumes_by_its_catch_up(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let p = Policy {
        misfire_grace: secs(15),
        ..Policy::default()
    };
    put(q, &def("s", every(10), p, vec![job("t", 1, 0)]));
    put(q, &simple("other", every(1000)));
    clock.advance(secs(10));
    assert_eq!(ticks(&fire(q), "s"), vec![at(10)]);
    assert!(sched(q).pause_schedule("s", true).unwrap());
    assert!(info(q, "s").paused);
    clock.advance(secs(100));
    let r = fire(q);
    assert!(r.fired.is_empty() && r.missed.is_empty(), "paused: {r:?}");
    assert_eq!(
        r.next,
        Some(at(1000)),
        "the next tick of a schedule that is not paused"
    );
    assert_eq!(
        info(q, "s").last_tick,
        at(10),
        "no tick settled while paused"
    );
    assert!(
        !sched(q).pause_schedule("nope", true).unwrap(),
        "no such schedule"
    );

    assert!(sched(q).pause_schedule("s", false).unwrap());
    assert!(!info(q, "s").paused);
    // At 110: ticks 20..=110 passed; 100 and 110 are within the grace, 90
    // is the latest missed (caught up), 20..=80 are missed.
    let r = fire(q);
    assert_eq!(ticks(&r, "s"), vec![at(90), at(100), at(110)]);
    assert_eq!(missed(&r, "s"), 7);
    assert_eq!(r.next, Some(at(120)));
    let i = info(q, "s");
    assert_eq!((i.fired, i.missed), (4, 7));
}

pub fn fire_now_submits_outside_the_ticks(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    put(q, &simple("s", every(10)));
    clock.advance(secs(3));
    let f = sched(q)
        .fire_now("s")
        .unwrap()
        .expect("the schedule exists");
    assert_eq!((f.schedule.as_str(), f.tick), ("s", at(3)));
    assert_eq!(f.jobs.len(), 1);
    assert_eq!(view(q, f.jobs[0]).schedule, mark("s", at(3)));
    let i = info(q, "s");
    assert_eq!(i.last_fire, Some((at(3), f.jobs[0])), "the last submission");
    assert_eq!(
        (i.last_tick, i.next_tick),
        (START, Some(at(10))),
        "its ticks are not changed"
    );
    assert_eq!(i.fired, 0, "no tick fired");
    assert!(sched(q).fire_now("nope").unwrap().is_none());
    // Paused, it may still be run by hand.
    sched(q).pause_schedule("s", true).unwrap();
    assert!(sched(q).fire_now("s").unwrap().is_some());
    sched(q).pause_schedule("s", false).unwrap();
    clock.advance(secs(7));
    assert_eq!(ticks(&fire(q), "s"), vec![at(10)], "the tick fires as due");
    assert_eq!(total_jobs(q), 3);
}

pub fn put_adds_changes_and_restarts_ticks_when_the_spec_changes(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let d = simple("s", every(10));
    assert_eq!(put(q, &d), Put::Added);
    assert_eq!(put(q, &d), Put::Unchanged);
    let other_anchor = simple("s", Spec::every(secs(10), at(3)).expect("a valid interval"));
    assert_eq!(
        put(q, &other_anchor),
        Put::Unchanged,
        "the anchor is the queue's, not the definition's"
    );
    let i = info(q, "s");
    match i.def.spec {
        Spec::Every { every, anchor } => {
            assert_eq!((every, anchor), (secs(10), START), "anchored when added")
        }
        Spec::Cron(_) => panic!("an interval"),
    }
    assert_eq!((i.created_at, i.updated_at), (START, START));

    clock.advance(secs(4));
    // The policy changes: the ticks go on as they were.
    let mut d2 = d.clone();
    d2.policy.misfire_grace = secs(5);
    assert_eq!(put(q, &d2), Put::Changed);
    let i = info(q, "s");
    assert_eq!(i.def.policy.misfire_grace, secs(5));
    assert_eq!((i.last_tick, i.next_tick), (START, Some(at(10))));
    assert_eq!((i.created_at, i.updated_at), (START, at(4)));
    // The submission changes: the next tick makes the new one.
    let mut d3 = d2.clone();
    d3.jobs = vec![job("u", 1, 0)];
    assert_eq!(put(q, &d3), Put::Changed);
    assert_eq!(&*info(q, "s").def.jobs[0].task, "u");
    assert_eq!(put(q, &d3), Put::Unchanged);
    clock.advance(secs(6));
    let r = fire(q);
    assert_eq!(ticks(&r, "s"), vec![at(10)]);
    assert_eq!(&*view(q, r.fired[0].jobs[0]).task, "u");

    // Paused, then the spec changes: the ticks of the old spec are
    // dropped, the new one ticks from now, and it stays paused.
    clock.advance(secs(5));
    sched(q).pause_schedule("s", true).unwrap();
    let mut d4 = d3.clone();
    d4.spec = every(20);
    assert_eq!(put(q, &d4), Put::Changed);
    let i = info(q, "s");
    assert!(i.paused, "put keeps paused");
    assert_eq!((i.last_tick, i.next_tick), (at(15), Some(at(35))));
    match i.def.spec {
        Spec::Every { every, anchor } => assert_eq!((every, anchor), (secs(20), at(15))),
        Spec::Cron(_) => panic!("an interval"),
    }
    assert_eq!(
        (i.fired, i.last_fire.map(|f| f.0)),
        (1, Some(at(10))),
        "kept"
    );
    sched(q).pause_schedule("s", false).unwrap();
    clock.advance(secs(10));
    assert!(fire(q).fired.is_empty(), "20 and 30 are not ticks any more");
    clock.advance(secs(10));
    assert_eq!(ticks(&fire(q), "s"), vec![at(35)]);
}

pub fn a_removed_schedule_fires_no_more_and_its_jobs_stay(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    put(q, &simple("s", every(10)));
    put(q, &simple("kept", every(10)));
    clock.advance(secs(10));
    let id = fire(q)
        .fired
        .iter()
        .find(|f| f.schedule == "s")
        .unwrap()
        .jobs[0];
    assert!(sched(q).remove_schedule("s").unwrap());
    assert!(!sched(q).remove_schedule("s").unwrap(), "already removed");
    assert!(sched(q).schedule("s").unwrap().is_none());
    let names: Vec<String> = sched(q)
        .list_schedules()
        .unwrap()
        .into_iter()
        .map(|i| i.def.name)
        .collect();
    assert_eq!(names, vec!["kept"]);
    clock.advance(secs(10));
    let r = fire(q);
    assert!(ticks(&r, "s").is_empty());
    assert_eq!(ticks(&r, "kept"), vec![at(20)]);
    assert_eq!(view(q, id).schedule, mark("s", at(10)), "its job stays");
    // Added again, it starts afresh.
    assert_eq!(put(q, &simple("s", every(10))), Put::Added);
    assert_eq!(info(q, "s").next_tick, Some(at(30)));
}

pub fn a_workflow_submission_fires_linked(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let first = NewJob {
        name: Some("extract".into()),
        ..job("extract", 1, 0)
    };
    let mut second = NewJob {
        name: Some("load".into()),
        ..job("load", 1, 0)
    };
    second.after.push(After {
        parent: Parent::Batch(0),
        key: "extract".into(),
        many: false,
    });
    put(
        q,
        &def("etl", every(60), Policy::default(), vec![first, second]),
    );
    clock.advance(secs(60));
    let r = fire(q);
    assert_eq!(r.fired.len(), 1);
    let ids = r.fired[0].jobs.clone();
    assert_eq!(ids.len(), 2, "one submission of two jobs");
    assert_eq!(view(q, ids[1]).state, JobState::Blocked);
    assert_eq!(view(q, ids[1]).after, vec![ids[0]]);
    assert_eq!(info(q, "etl").last_fire, Some((at(60), ids[0])));
    let c = claim_started(q);
    assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(c[0].schedule, mark("etl", at(60)));
    end(
        q,
        &c[0],
        Verdict::Succeeded(Output::from_json(r#"{"rows":3}"#).unwrap()),
    );
    let c = claim_started(q);
    assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(c[0].schedule, mark("etl", at(60)), "both carry the tick");
    let parents: serde_json::Value = serde_json::from_str(c[0].parents.as_json()).unwrap();
    assert_eq!(parents, serde_json::json!({"extract": {"rows": 3}}));
    // The next tick makes a workflow of its own.
    clock.advance(secs(60));
    let r = fire(q);
    let next = &r.fired[0].jobs;
    assert_eq!(view(q, next[1]).after, vec![next[0]]);
    assert_eq!(q.admin().unwrap().workflow(next[0]).unwrap(), next.clone());
}

pub fn a_tick_s_jobs_go_through_the_insert_path(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let keyed = NewJob {
        unique: Some(Unique {
            key: "report".into(),
            within: None,
            on_conflict: OnConflict::Skip,
        }),
        ..job("t", 1, 0)
    };
    put(q, &def("s", every(10), Policy::default(), vec![keyed]));
    clock.advance(secs(10));
    let a = fire(q).fired[0].jobs[0];
    clock.advance(secs(10));
    let r = fire(q);
    assert_eq!(
        r.fired[0].jobs,
        vec![a],
        "the key is held by the waiting job: the tick settles on it"
    );
    assert_eq!(total_jobs(q), 1);
    assert_eq!(info(q, "s").fired, 2);
    let c = claim_started(q);
    end(q, &c[0], Verdict::Succeeded(Output::none()));
    clock.advance(secs(10));
    let r = fire(q);
    assert_ne!(r.fired[0].jobs, vec![a], "the key is free again");
    assert_eq!(total_jobs(q), 2);
}

pub fn a_settled_tick_never_fires_again(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    put(q, &simple("s", every(10)));
    clock.advance(secs(10));
    let id = fire(q).fired[0].jobs[0];
    let c = claim_started(q);
    end(q, &c[0], Verdict::Dead);
    // Nothing brings the tick back: not its job's end, not putting the
    // schedule again unchanged or with another policy, not pausing.
    assert!(fire(q).fired.is_empty());
    assert_eq!(put(q, &simple("s", every(10))), Put::Unchanged);
    let mut d = simple("s", every(10));
    d.policy.catch_up = CatchUp::All;
    assert_eq!(put(q, &d), Put::Changed);
    sched(q).pause_schedule("s", true).unwrap();
    sched(q).pause_schedule("s", false).unwrap();
    let r = fire(q);
    assert!(r.fired.is_empty(), "{r:?}");
    q.admin()
        .unwrap()
        .retry(id)
        .unwrap()
        .expect("a dead job is retried");
    assert!(fire(q).fired.is_empty());
    assert_eq!(total_jobs(q), 1);
    assert_eq!(info(q, "s").fired, 1);
}

pub fn schedules_are_listed_with_what_they_did(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    assert!(sched(q).list_schedules().unwrap().is_empty());
    assert!(sched(q).schedule("b").unwrap().is_none());
    let p = Policy {
        overlap: Overlap::Skip,
        misfire_grace: secs(30),
        catch_up: CatchUp::All,
        catch_up_max: 7,
    };
    let mut j = job("report", 2, 4);
    j.params = runyard_core::JobParams::from_json(r#"{"day": "mon"}"#).unwrap();
    put(q, &def("b", every(10), p, vec![j]));
    clock.advance(secs(1));
    put(q, &simple("a", every(3600)));
    let all = sched(q).list_schedules().unwrap();
    let names: Vec<&str> = all.iter().map(|i| i.def.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"], "by name");
    let b = &all[1];
    assert_eq!(b.def.policy, p);
    assert_eq!(b.def.jobs.len(), 1);
    assert_eq!(&*b.def.jobs[0].task, "report");
    assert_eq!(
        b.def.jobs[0].params.to_value(),
        serde_json::json!({"day": "mon"})
    );
    assert_eq!(b.def.jobs[0].settings.priority, 4);
    assert_eq!(b.def.jobs[0].schedule, None);
    assert_eq!(b.def.spec.describe(), "every 10s");
    assert_eq!(all[0].created_at, at(1));
    clock.advance(secs(9));
    let r = fire(q);
    let id = r.fired[0].jobs[0];
    clock.advance(secs(10));
    fire(q);
    let b = info(q, "b");
    assert_eq!(b.last_fire, Some((at(10), id)));
    assert_eq!(b.last_state, Some(JobState::Queued));
    assert_eq!((b.fired, b.skipped, b.missed), (1, 1, 0));
    assert_eq!((b.last_tick, b.next_tick), (at(20), Some(at(30))));
    assert!(!b.paused);
    assert_eq!(fire(q).next, Some(at(30)), "the earliest next tick");
}

pub fn a_cron_schedule_ticks_in_its_zone(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    // START is 08:00 UTC on a January day: 09:00 in Berlin (UTC+1).
    let berlin = Spec::cron("0 9 * * *", Some("Europe/Berlin")).expect("a valid expression");
    let quarter = Spec::cron("*/15 * * * *", None).expect("a valid expression");
    assert_eq!(put(q, &simple("daily", berlin.clone())), Put::Added);
    assert_eq!(put(q, &simple("quarter", quarter)), Put::Added);
    let i = info(q, "daily");
    assert_eq!(
        i.next_tick,
        Some(at(24 * 3600)),
        "the first 09:00 in Berlin strictly after it was added"
    );
    assert_eq!(i.def.spec, berlin, "the expression and zone are stored");
    assert_eq!(i.def.spec.zone(), Some("Europe/Berlin"));
    assert_eq!(info(q, "quarter").def.spec.zone(), Some("UTC"));
    assert_eq!(info(q, "quarter").next_tick, Some(at(15 * 60)));
    clock.advance(secs(15 * 60));
    let r = fire(q);
    assert_eq!(ticks(&r, "quarter"), vec![at(15 * 60)]);
    assert!(ticks(&r, "daily").is_empty());
    assert_eq!(
        view(q, r.fired[0].jobs[0]).schedule,
        mark("quarter", at(15 * 60))
    );
    assert_eq!(r.next, Some(at(30 * 60)));

    // Another zone is another spec: it ticks from now.
    let tokyo = Spec::cron("0 9 * * *", Some("Asia/Tokyo")).expect("a valid expression");
    assert_eq!(put(q, &simple("daily", berlin)), Put::Unchanged);
    assert_eq!(put(q, &simple("daily", tokyo)), Put::Changed);
    let i = info(q, "daily");
    assert_eq!(i.last_tick, at(15 * 60));
    // 09:00 in Tokyo (UTC+9) is 00:00 UTC: the next one is 16 h after START.
    assert_eq!(i.next_tick, Some(at(16 * 3600)));
    clock.set(at(16 * 3600));
    let r = fire(q);
    assert_eq!(ticks(&r, "daily"), vec![at(16 * 3600)]);
    // The quarter hours passed meanwhile: the grace holds none of them but
    // the last (16:00), and the latest missed one (15:45) is caught up.
    assert_eq!(
        ticks(&r, "quarter"),
        vec![at(16 * 3600 - 15 * 60), at(16 * 3600)]
    );
}

pub fn a_job_inserted_with_a_tick_keeps_it(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let q = &*q;
    let plain = NewJob {
        schedule: mark("by-hand", at(7)),
        ..job("t", 1, 0)
    };
    let linked = NewJob {
        name: Some("named".into()),
        schedule: mark("by-hand", at(8)),
        ..job("t", 1, 0)
    };
    let ids: Vec<_> = q
        .enqueue(vec![plain, job("t", 1, 0)])
        .unwrap()
        .into_iter()
        .chain(q.enqueue(vec![linked]).unwrap())
        .map(|e| e.id())
        .collect();
    let want = [mark("by-hand", at(7)), None, mark("by-hand", at(8))];
    for (id, w) in ids.iter().zip(&want) {
        assert_eq!(&view(q, *id).schedule, w, "job {id}'s view");
    }
    let c = q.claim("w", 10, LEASE).unwrap();
    let got: Vec<_> = c.iter().map(|c| (c.id, c.schedule.clone())).collect();
    let want: Vec<_> = ids.iter().copied().zip(want).collect();
    assert_eq!(got, want, "claims carry them (plain and linked inserts)");
}

pub fn bad_schedules_are_refused_and_nothing_is_stored(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let q = &*q;
    let refused = |d: &ScheduleDef, what: &str| {
        let e = sched(q).put_schedule(d).expect_err(what);
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput, "{what}: {e}");
        e.to_string()
    };
    let e = refused(&simple("no spaces", every(10)), "a bad name");
    assert!(e.contains("no spaces"), "{e}");
    refused(&simple("", every(10)), "an empty name");
    refused(
        &def("s", every(10), Policy::default(), Vec::new()),
        "no job",
    );
    let mut later = job("t", 1, 0);
    later.run_at = Some(at(100));
    let e = refused(
        &def("s", every(10), Policy::default(), vec![later]),
        "a run-at",
    );
    assert!(e.contains("run-at"), "{e}");
    let mut backwards = job("t", 1, 0);
    backwards.after.push(After {
        parent: Parent::Batch(1),
        key: "x".into(),
        many: false,
    });
    refused(
        &def(
            "s",
            every(10),
            Policy::default(),
            vec![backwards, job("t", 1, 0)],
        ),
        "a parent later in the batch",
    );
    let mut by_id = job("t", 1, 0);
    by_id.after.push(After::job(JobId(1)));
    refused(
        &def("s", every(10), Policy::default(), vec![by_id]),
        "a parent by id",
    );
    let short = Spec::Every {
        every: Duration::from_millis(10),
        anchor: START,
    };
    refused(&simple("s", short), "an interval under a second");
    assert!(
        sched(q).list_schedules().unwrap().is_empty(),
        "nothing stored"
    );
    let r = fire(q);
    assert_eq!((r.fired.len(), r.next, r.now), (0, None, START));
}

#[cfg(test)]
mod tests {
    use crate::{MemoryQueue, Queue, QueueErrorKind};

    #[test]
    fn the_memory_queue_keeps_no_schedules_and_says_so() {
        let q = MemoryQueue::new();
        assert!(q.as_schedules().is_none());
        let e = q.schedules().err().expect("refused");
        assert_eq!(e.kind(), QueueErrorKind::Unsupported);
        let msg = e.to_string();
        assert!(msg.contains("schedules"), "{msg}");
        assert!(
            msg.contains("SQLite") && msg.contains("PostgreSQL"),
            "{msg}"
        );
    }
}
