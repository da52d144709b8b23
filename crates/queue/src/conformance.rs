//! The conformance suite: the behaviour every [`Queue`] backend must have,
//! written once against the trait.
//!
//! One concept: the conformance suite (its newer cases in `conformance/`).
//!
//! A backend runs it with [`conformance_tests!`](crate::conformance_tests),
//! giving a function that makes a fresh, empty queue on the given clock
//! (each call a queue of its own: a new file, a new schema):
//!
//! ```ignore
//! runyard_queue::conformance_tests!(|clock| Box::new(MyQueue::open_temp(clock)));
//! ```
//!
//! A queue that keeps schedules also runs
//! [`schedule_conformance_tests!`](crate::schedule_conformance_tests).
//!
//! Time only moves when a test moves the [`ManualClock`](crate::ManualClock), so lease expiry
//! and retry schedules are tested without sleeping.

#![allow(missing_docs)]

mod additions;
mod counts;
mod drained;
mod flow;
mod flow_admin;
mod flow_random;
mod limits;
mod limits_random;
mod pause;
mod schedules;
mod stats;
mod support;
mod unique;
mod views;

use support::{fresh, ids, state, succeed, view, LEASE};
pub use support::{job, record, settings, Factory};

pub use additions::{
    a_job_needing_what_the_queue_lacks_is_refused_at_submit,
    an_undone_claim_never_shares_its_fencing_token,
    enqueue_async_adds_jobs_from_a_current_thread_runtime,
};
pub use counts::{
    counts_match_a_scan_after_duplicates_and_every_kind_of_claim,
    counts_match_a_scan_after_every_transition,
};
pub use drained::the_claim_order_holds_from_a_deep_queue_to_a_drained_one;
pub use flow::{
    a_chain_runs_in_order_and_passes_outputs_on,
    a_dead_parent_cancels_its_dependents_naming_the_root, a_diamond_with_a_failed_branch,
    a_fan_in_waits_for_every_copy, a_large_output_is_stored_capped,
    a_missing_or_later_parent_is_refused_and_nothing_enqueued,
    a_parent_lost_on_its_last_attempt_cancels_its_dependents,
    parents_that_already_ended_count_at_insert,
};
pub use flow_admin::{
    a_released_job_waits_for_its_own_run_at, a_retry_blocks_again_a_released_always_job,
    a_retry_leaves_cancelled_what_another_parent_still_cancels,
    a_retry_makes_an_always_job_wait_again,
    a_running_job_cancels_its_dependents_when_its_worker_stops_it,
    a_workflow_is_found_from_any_member, an_edge_to_a_duplicate_waits_on_the_existing_job,
    cancel_pending_includes_blocked_jobs, cancelling_a_blocked_job_cancels_its_dependents,
    retrying_the_dead_root_gives_back_what_it_cancelled, views_and_counts_of_a_workflow,
};
pub use flow_random::random_workflows_respect_every_edge;
pub use limits::{
    a_key_is_shared_by_tasks_and_workers,
    a_key_limit_holds_across_concurrent_workers_from_the_first_claim,
    a_key_rate_is_shared_and_a_stored_rate_beats_it,
    a_rate_admits_a_burst_then_waits_for_the_window, a_stored_limit_beats_the_carried_one,
    a_task_limit_holds_across_claims, a_value_limit_beats_the_name_limit,
    bad_limit_changes_are_refused, lowering_a_limit_takes_nothing_back,
    slots_come_back_on_complete_release_and_rescue,
};
pub use limits_random::limits_hold_under_random_operations;
pub use pause::{
    a_claim_looks_past_held_jobs, a_newcomer_key_is_not_held_back_by_a_backlog,
    a_paused_task_is_not_claimed_and_its_unstarted_claims_go_back,
    holds_say_what_keeps_each_job_waiting, inserting_jobs_not_yet_due_does_not_move_the_frontier,
    keyless_batches_stay_first_in_first_out, pausing_every_task_holds_every_job,
    rate_keys_share_the_workers_fairly_too,
};
pub use schedules::{
    a_cron_schedule_ticks_in_its_zone, a_job_inserted_with_a_tick_keeps_it,
    a_paused_schedule_fires_nothing_and_resumes_by_its_catch_up,
    a_removed_schedule_fires_no_more_and_its_jobs_stay, a_settled_tick_never_fires_again,
    a_tick_fires_once_and_its_job_carries_the_tick, a_tick_s_jobs_go_through_the_insert_path,
    a_workflow_submission_fires_linked, bad_schedules_are_refused_and_nothing_is_stored,
    concurrent_firing_makes_one_submission_per_tick, fire_now_submits_outside_the_ticks,
    missed_ticks_follow_catch_up_after_the_clock_jumps, nothing_fires_before_the_first_tick,
    overlap_allow_fires_while_the_last_job_runs, overlap_skip_waits_for_the_last_job_to_end,
    put_adds_changes_and_restarts_ticks_when_the_spec_changes,
    random_firing_settles_every_tick_once, schedules_are_listed_with_what_they_did, Handles,
};
pub use stats::finished_attempts_are_counted_per_minute_and_outcome;
pub use unique::{
    a_running_job_holds_no_key_and_one_waits_behind_it, a_unique_job_after_others_is_refused,
    a_waiting_job_holds_its_unique_key, jobs_of_one_batch_see_the_keys_before_them,
    racing_submitters_of_one_key_make_one_job,
    replace_gives_the_waiting_job_new_parameters_and_run_at,
    the_idempotency_key_is_checked_before_the_unique_key, within_holds_the_key_after_a_success,
};
pub use views::a_job_s_view_carries_its_settings_run_at_and_keys;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{AttemptError, JobId, JobParams, JobState, OutcomeKind, Output};

use crate::{
    CancelResult, Claimed, Completion, Deleted, Enqueued, Lease, ListFilter, NewJob, Queue,
    QueueErrorKind, Rescue, Verdict,
};
use crate::{LiveWorker, NameTaken, WorkerInfo};

/// Runs every conformance test as a `#[test]` of the calling crate.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@tests $make;
            enqueue_and_claim_in_priority_order,
            the_claim_order_holds_from_a_deep_queue_to_a_drained_one,
            claims_are_exclusive_under_concurrent_workers,
            expired_leases_are_rescued_and_counted,
            fencing_refuses_a_taken_over_lease,
            retries_wait_for_their_time,
            delayed_jobs_wait_for_run_at,
            idempotency_keys_dedupe,
            exhausted_jobs_rescued_end_dead,
            rescue_by_worker_ignores_expiry,
            release_does_not_count_an_attempt,
            a_rescued_claim_that_never_started_does_not_count,
            a_job_that_kills_workers_before_its_start_is_seen_ends_dead,
            cancel_by_state,
            dead_jobs_can_be_retried_by_hand,
            ids_of_deleted_jobs_are_never_given_again,
            an_unfinished_job_is_not_deleted_and_its_state_is_said,
            list_get_and_counts,
            a_claim_counts_as_running_only_once_started,
            counts_match_a_scan_after_every_transition,
            counts_match_a_scan_after_duplicates_and_every_kind_of_claim,
            a_job_s_view_carries_its_settings_run_at_and_keys,
            claims_can_be_limited_to_tasks,
            outputs_and_errors_round_trip,
            nothing_lost_under_random_operations,
            agrees_with_a_model_step_by_step,
            jobs_due_after_an_insert_that_tagged_nothing_keep_their_place,
            the_latest_waker_is_called,
            a_live_worker_holds_its_name_until_its_heartbeat_lapses,
            unregistering_frees_a_name_and_only_registered_workers_are_listed,
            a_job_needing_what_the_queue_lacks_is_refused_at_submit,
            enqueue_async_adds_jobs_from_a_current_thread_runtime,
            an_undone_claim_never_shares_its_fencing_token,
            a_chain_runs_in_order_and_passes_outputs_on,
            a_fan_in_waits_for_every_copy,
            a_dead_parent_cancels_its_dependents_naming_the_root,
            a_parent_lost_on_its_last_attempt_cancels_its_dependents,
            a_diamond_with_a_failed_branch,
            parents_that_already_ended_count_at_insert,
            a_missing_or_later_parent_is_refused_and_nothing_enqueued,
            cancelling_a_blocked_job_cancels_its_dependents,
            a_running_job_cancels_its_dependents_when_its_worker_stops_it,
            cancel_pending_includes_blocked_jobs,
            retrying_the_dead_root_gives_back_what_it_cancelled,
            a_retry_makes_an_always_job_wait_again,
            a_retry_leaves_cancelled_what_another_parent_still_cancels,
            a_workflow_is_found_from_any_member,
            a_released_job_waits_for_its_own_run_at,
            an_edge_to_a_duplicate_waits_on_the_existing_job,
            views_and_counts_of_a_workflow,
            random_workflows_respect_every_edge,
            a_large_output_is_stored_capped,
            a_retry_blocks_again_a_released_always_job,
            a_waiting_job_holds_its_unique_key,
            replace_gives_the_waiting_job_new_parameters_and_run_at,
            within_holds_the_key_after_a_success,
            a_running_job_holds_no_key_and_one_waits_behind_it,
            jobs_of_one_batch_see_the_keys_before_them,
            racing_submitters_of_one_key_make_one_job,
            the_idempotency_key_is_checked_before_the_unique_key,
            a_unique_job_after_others_is_refused,
            a_task_limit_holds_across_claims,
            a_key_is_shared_by_tasks_and_workers,
            a_key_limit_holds_across_concurrent_workers_from_the_first_claim,
            slots_come_back_on_complete_release_and_rescue,
            a_stored_limit_beats_the_carried_one,
            a_value_limit_beats_the_name_limit,
            lowering_a_limit_takes_nothing_back,
            bad_limit_changes_are_refused,
            a_rate_admits_a_burst_then_waits_for_the_window,
            a_key_rate_is_shared_and_a_stored_rate_beats_it,
            a_paused_task_is_not_claimed_and_its_unstarted_claims_go_back,
            pausing_every_task_holds_every_job,
            holds_say_what_keeps_each_job_waiting,
            a_newcomer_key_is_not_held_back_by_a_backlog,
            rate_keys_share_the_workers_fairly_too,
            keyless_batches_stay_first_in_first_out,
            inserting_jobs_not_yet_due_does_not_move_the_frontier,
            limits_hold_under_random_operations,
            a_claim_looks_past_held_jobs,
            finished_attempts_are_counted_per_minute_and_outcome,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$make);
            }
        )*
    };
}

/// Runs every schedule conformance case (`conformance/schedules.rs`) as a
/// `#[test]` of the calling crate, for a queue that keeps schedules.
///
/// The first argument makes a fresh, empty queue on the given clock, as
/// for [`conformance_tests!`](crate::conformance_tests). The second, when
/// the backend can open several handles on one store (as several worker
/// processes would), makes `n` of them on one fresh store (see
/// [`Handles`]); the concurrent and random cases then fire from each.
/// Without it, those cases fire from threads sharing one handle.
///
/// ```ignore
/// runyard_queue::schedule_conformance_tests!(fresh, |clock, n| handles(clock, n));
/// ```
#[macro_export]
macro_rules! schedule_conformance_tests {
    ($make:expr) => {
        $crate::schedule_conformance_tests!(@cases $make);

        #[test]
        fn concurrent_firing_makes_one_submission_per_tick() {
            $crate::conformance::concurrent_firing_makes_one_submission_per_tick(&$make, None);
        }

        #[test]
        fn random_firing_settles_every_tick_once() {
            $crate::conformance::random_firing_settles_every_tick_once(&$make, None);
        }
    };
    ($make:expr, $handles:expr) => {
        $crate::schedule_conformance_tests!(@cases $make);

        #[test]
        fn concurrent_firing_makes_one_submission_per_tick() {
            $crate::conformance::concurrent_firing_makes_one_submission_per_tick(
                &$make,
                Some(&$handles),
            );
        }

        #[test]
        fn random_firing_settles_every_tick_once() {
            $crate::conformance::random_firing_settles_every_tick_once(&$make, Some(&$handles));
        }
    };
    (@cases $make:expr) => {
        $crate::conformance_tests!(@tests $make;
            nothing_fires_before_the_first_tick,
            a_tick_fires_once_and_its_job_carries_the_tick,
            missed_ticks_follow_catch_up_after_the_clock_jumps,
            overlap_skip_waits_for_the_last_job_to_end,
            overlap_allow_fires_while_the_last_job_runs,
            a_paused_schedule_fires_nothing_and_resumes_by_its_catch_up,
            fire_now_submits_outside_the_ticks,
            put_adds_changes_and_restarts_ticks_when_the_spec_changes,
            a_removed_schedule_fires_no_more_and_its_jobs_stay,
            a_workflow_submission_fires_linked,
            a_tick_s_jobs_go_through_the_insert_path,
            a_settled_tick_never_fires_again,
            schedules_are_listed_with_what_they_did,
            a_cron_schedule_ticks_in_its_zone,
            a_job_inserted_with_a_tick_keeps_it,
            bad_schedules_are_refused_and_nothing_is_stored,
        );
    };
}

pub fn enqueue_and_claim_in_priority_order(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let mut low = job("b", 3, -1);
    low.params = JobParams::from_json(r#"{"n": 7}"#).unwrap();
    let e = q
        .enqueue(vec![job("a", 3, 0), job("a", 3, 5), job("a", 3, 0), low])
        .unwrap();
    let id = ids(&e);
    assert!(e.iter().all(|e| matches!(e, Enqueued::New(_))));
    assert_eq!(BTreeSet::from_iter(id.iter()).len(), 4, "ids are distinct");
    let c = q.claim("w", 10, LEASE).unwrap();
    let got: Vec<JobId> = c.iter().map(|c| c.id).collect();
    assert_eq!(
        got,
        vec![id[1], id[0], id[2], id[3]],
        "priority, then enqueue order"
    );
    assert!(c.iter().all(|c| c.attempt == 1));
    assert_eq!(&*c[3].task, "b");
    assert_eq!(c[3].params.to_value(), serde_json::json!({"n": 7}));
    assert_eq!(c[0].settings, *settings(3, 5));
    assert!(
        q.claim("w", 10, LEASE).unwrap().is_empty(),
        "nothing left to claim"
    );
    let starts: Vec<_> = c.iter().map(|c| (c.lease(), q.now())).collect();
    q.started("w", &starts).unwrap();
    assert_eq!(q.counts().unwrap().running, 4);
}

pub fn claims_are_exclusive_under_concurrent_workers(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let n = 2000;
    let enq: Vec<JobId> = (0..n / 100)
        .flat_map(|_| {
            ids(&q
                .enqueue((0..100).map(|_| job("t", 1, 0)).collect())
                .unwrap())
        })
        .collect();
    let q: Arc<dyn Queue> = Arc::from(q);
    let claimed: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let q = Arc::clone(&q);
                s.spawn(move || {
                    let name = format!("w{w}");
                    let mut mine = Vec::new();
                    loop {
                        let c = q.claim(&name, 7, LEASE).unwrap();
                        if c.is_empty() {
                            break mine;
                        }
                        for c in &c {
                            succeed(&*q, &name, c).expect("lease held");
                            mine.push(c.id);
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<JobId> = claimed.into_iter().flatten().collect();
    assert_eq!(all.len(), n, "every job claimed exactly once");
    assert_eq!(
        BTreeSet::from_iter(all.iter().copied()),
        BTreeSet::from_iter(enq.iter().copied())
    );
    assert_eq!(q.counts().unwrap().succeeded, n as u64);
}

pub fn expired_leases_are_rescued_and_counted(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 3, 0)]).unwrap()[0].id();
    let c = q.claim("w1", 1, Duration::from_secs(10)).unwrap().remove(0);
    q.started("w1", &[(c.lease(), q.now())]).unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(
        q.rescue(Rescue::Expired).unwrap().ids.is_empty(),
        "lease still valid"
    );
    let hb = q
        .heartbeat("w1", &[c.lease()], Duration::from_secs(10))
        .unwrap();
    assert!(hb.lost.is_empty() && hb.cancel_requested.is_empty());
    clock.advance(Duration::from_secs(8));
    assert!(
        q.rescue(Rescue::Expired).unwrap().ids.is_empty(),
        "the heartbeat extended the lease"
    );
    clock.advance(Duration::from_secs(3));
    assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![id]);
    assert_eq!(state(&*q, id), JobState::Queued);
    let v = view(&*q, id);
    assert_eq!(v.attempts.len(), 1, "the lost attempt counts");
    assert_eq!(v.attempts[0].outcome, OutcomeKind::Crashed);
    assert_eq!(v.attempts[0].number, 1);
    let again = q.claim("w2", 1, LEASE).unwrap();
    assert_eq!(again[0].attempt, 2);
}

pub fn fencing_refuses_a_taken_over_lease(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 3, 0)]).unwrap()[0].id();
    let old = q.claim("w1", 1, Duration::from_secs(1)).unwrap().remove(0);
    q.started("w1", &[(old.lease(), q.now())]).unwrap();
    clock.advance(Duration::from_secs(2));
    q.rescue(Rescue::Expired).unwrap();
    let new = q.claim("w2", 1, LEASE).unwrap().remove(0);
    assert_eq!(new.attempt, 2);
    assert!(
        succeed(&*q, "w1", &old).is_err(),
        "the old holder cannot record an outcome"
    );
    let hb = q.heartbeat("w1", &[old.lease()], LEASE).unwrap();
    assert_eq!(hb.lost, vec![old.lease()]);
    assert!(q.release("w1", &[old.lease()]).unwrap()[0].is_err());
    assert!(
        succeed(&*q, "w1", &new).is_err(),
        "another worker cannot use w2's lease"
    );
    succeed(&*q, "w2", &new).expect("w2 holds the lease");
    let v = view(&*q, id);
    assert_eq!(v.state, JobState::Succeeded);
    let outcomes: Vec<OutcomeKind> = v.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, vec![OutcomeKind::Crashed, OutcomeKind::Succeeded]);
    assert!(
        succeed(&*q, "w2", &new).is_err(),
        "an outcome is recorded once"
    );
    assert!(
        q.claim("w3", 10, LEASE).unwrap().is_empty(),
        "a succeeded job never runs again"
    );
}

pub fn retries_wait_for_their_time(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 3, 0)]).unwrap()[0].id();
    let c = q.claim("w", 1, LEASE).unwrap().remove(0);
    let at = q.now().saturating_add(Duration::from_secs(10));
    let done = Completion {
        lease: c.lease(),
        record: record(&*q, c.lease(), OutcomeKind::Failed),
        verdict: Verdict::Retry { at },
    };
    q.complete("w", &[done]).unwrap().results[0].unwrap();
    assert_eq!(state(&*q, id), JobState::Scheduled);
    assert_eq!(q.counts().unwrap().scheduled, 1);
    assert!(
        q.claim("w", 1, LEASE).unwrap().is_empty(),
        "not before its time"
    );
    assert_eq!(q.next_due().unwrap(), Some(at));
    clock.advance(Duration::from_secs(9));
    assert!(q.claim("w", 1, LEASE).unwrap().is_empty());
    clock.advance(Duration::from_secs(1));
    // Readers see it queued, and a worker told when to look is told now.
    assert_eq!(q.counts().unwrap().queued, 1);
    assert!(q.next_due().unwrap().is_some_and(|t| t <= q.now()));
    let again = q.claim("w", 1, LEASE).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].ready_at, at, "queued time counts from the run-at");
}

pub fn delayed_jobs_wait_for_run_at(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let mut j = job("t", 1, 0);
    let at = q.now().saturating_add(Duration::from_secs(60));
    j.run_at = Some(at);
    let id = q.enqueue(vec![j, job("t", 1, 0)]).unwrap()[0].id();
    assert_eq!(state(&*q, id), JobState::Scheduled);
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(c.len(), 1);
    assert_ne!(c[0].id, id);
    clock.advance(Duration::from_secs(60));
    assert_eq!(q.claim("w", 10, LEASE).unwrap()[0].id, id);
    assert_eq!(q.next_due().unwrap(), None, "nothing waits");
}

pub fn idempotency_keys_dedupe(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let keyed = |k: &str| NewJob {
        idempotency_key: Some(k.to_string()),
        ..job("t", 1, 0)
    };
    let first = q.enqueue(vec![keyed("a"), keyed("a"), keyed("b")]).unwrap();
    assert!(matches!(first[0], Enqueued::New(_)));
    assert_eq!(
        first[1],
        Enqueued::Duplicate(first[0].id()),
        "a duplicate within one batch"
    );
    assert!(matches!(first[2], Enqueued::New(_)));
    assert_eq!(
        q.enqueue(vec![keyed("a")]).unwrap()[0],
        Enqueued::Duplicate(first[0].id())
    );
    for c in q.claim("w", 10, LEASE).unwrap() {
        succeed(&*q, "w", &c).unwrap();
    }
    assert_eq!(
        q.enqueue(vec![keyed("a")]).unwrap()[0],
        Enqueued::Duplicate(first[0].id()),
        "a key stays taken after its job is done"
    );
    assert_eq!(q.counts().unwrap().total(), 2);
}

pub fn exhausted_jobs_rescued_end_dead(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 1, 0)]).unwrap()[0].id();
    let c = q.claim("w", 1, Duration::from_secs(1)).unwrap().remove(0);
    q.started("w", &[(c.lease(), q.now())]).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![id]);
    assert_eq!(state(&*q, id), JobState::Dead);
    assert_eq!(view(&*q, id).attempts.len(), 1);
}

pub fn rescue_by_worker_ignores_expiry(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let e = q.enqueue(vec![job("t", 2, 0), job("t", 2, 0)]).unwrap();
    let a = q.claim("dead-worker", 1, LEASE).unwrap().remove(0);
    let b = q.claim("live-worker", 1, LEASE).unwrap().remove(0);
    q.started("dead-worker", &[(a.lease(), q.now())]).unwrap();
    q.started("live-worker", &[(b.lease(), q.now())]).unwrap();
    assert_eq!(
        q.rescue(Rescue::Worker("dead-worker".into())).unwrap().ids,
        vec![e[0].id()]
    );
    assert_eq!(state(&*q, e[0].id()), JobState::Queued);
    assert_eq!(state(&*q, e[1].id()), JobState::Running);
    assert!(q
        .rescue(Rescue::Worker("nobody".into()))
        .unwrap()
        .ids
        .is_empty());
}

pub fn release_does_not_count_an_attempt(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 1, 0)]).unwrap()[0].id();
    let c = q.claim("w", 1, LEASE).unwrap().remove(0);
    q.release("w", &[c.lease()]).unwrap()[0].unwrap();
    assert_eq!(state(&*q, id), JobState::Queued);
    let again = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(again.attempt, 1, "a released claim is not an attempt");
    assert!(view(&*q, id).attempts.is_empty());
}

pub fn a_rescued_claim_that_never_started_does_not_count(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let e = ids(&q.enqueue(vec![job("t", 1, 0), job("t", 1, 0)]).unwrap());
    let c = q.claim("w", 2, Duration::from_secs(1)).unwrap();
    // Only the first started before the worker died; the second was claimed ahead.
    q.started("w", &[(c[0].lease(), q.now())]).unwrap();
    q.started("someone-else", &[(c[1].lease(), q.now())])
        .unwrap();
    clock.advance(Duration::from_secs(2));
    let mut rescued = q.rescue(Rescue::Expired).unwrap().ids;
    rescued.sort();
    assert_eq!(rescued, e);
    assert_eq!(state(&*q, e[0]), JobState::Dead, "its one attempt was lost");
    assert_eq!(view(&*q, e[0]).attempts[0].outcome, OutcomeKind::Crashed);
    assert_eq!(
        state(&*q, e[1]),
        JobState::Queued,
        "never started: back, with its attempt"
    );
    assert!(view(&*q, e[1]).attempts.is_empty());
    assert_eq!(q.claim("w2", 1, LEASE).unwrap()[0].attempt, 1);
}

pub fn a_job_that_kills_workers_before_its_start_is_seen_ends_dead(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = ids(&q.enqueue(vec![job("t", 2, 0)]).unwrap())[0];
    // Two claims may be lost unseen (as many as its attempts)...
    for round in 1..=2 {
        let c = q
            .claim(&format!("w{round}"), 1, Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            c[0].attempt, 1,
            "round {round}: unseen claims are not attempts"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![id]);
        assert_eq!(state(&*q, id), JobState::Queued);
    }
    // ...then each lost claim counts, until the job is dead.
    for round in 3..=4 {
        let c = q
            .claim(&format!("w{round}"), 1, Duration::from_secs(1))
            .unwrap();
        assert_eq!(c[0].attempt, round - 2);
        clock.advance(Duration::from_secs(2));
        assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![id]);
    }
    let v = view(&*q, id);
    assert_eq!(v.state, JobState::Dead);
    assert_eq!(v.attempts.len(), 2);
    assert!(v.attempts.iter().all(|a| a.outcome == OutcomeKind::Crashed));
    let msg = &v.attempts[0].error.as_ref().unwrap().message;
    assert!(
        msg.contains("before this attempt was seen starting"),
        "{msg}"
    );
}

pub fn cancel_by_state(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let mut sched = job("t", 1, 0);
    sched.run_at = Some(q.now().saturating_add(Duration::from_secs(60)));
    let e = ids(&q
        .enqueue(vec![
            job("t", 1, 10),
            sched,
            job("t", 1, 5),
            job("t", 1, 0),
            job("t", 1, 0),
        ])
        .unwrap());
    let running = q.claim("w", 2, LEASE).unwrap();
    assert_eq!(
        running.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![e[0], e[2]]
    );
    q.started("w", &[(running[0].lease(), q.now())]).unwrap();
    succeed(&*q, "w", &running[1]).unwrap();
    let r = q
        .admin()
        .unwrap()
        .cancel(&[e[3], e[1], e[0], e[2], JobId(999_999)])
        .unwrap()
        .results;
    assert_eq!(
        r,
        vec![
            CancelResult::Cancelled,
            CancelResult::Cancelled,
            CancelResult::Requested,
            CancelResult::AlreadyFinished(JobState::Succeeded),
            CancelResult::NotFound
        ]
    );
    let hb = q.heartbeat("w", &[running[0].lease()], LEASE).unwrap();
    assert_eq!(hb.cancel_requested, vec![running[0].lease()]);
    assert_eq!(q.admin().unwrap().cancel_pending().unwrap(), vec![e[4]]);
    let c = q.counts().unwrap();
    assert_eq!(
        (c.cancelled, c.running, c.succeeded, c.queued, c.scheduled),
        (3, 1, 1, 0, 0)
    );
}

pub fn dead_jobs_can_be_retried_by_hand(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let id = q.enqueue(vec![job("t", 2, 0)]).unwrap()[0].id();
    for _ in 0..2 {
        let c = q.claim("w", 1, LEASE).unwrap().remove(0);
        let verdict = if c.attempt == 2 {
            Verdict::Dead
        } else {
            Verdict::Retry { at: q.now() }
        };
        let done = Completion {
            lease: c.lease(),
            record: record(&*q, c.lease(), OutcomeKind::Failed),
            verdict,
        };
        q.complete("w", &[done]).unwrap().results[0].unwrap();
    }
    assert_eq!(state(&*q, id), JobState::Dead);
    assert!(q.admin().unwrap().retry(id).unwrap().is_some());
    assert!(
        q.admin().unwrap().retry(id).unwrap().is_none(),
        "only dead or cancelled jobs are retried"
    );
    let c = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(c.attempt, 3, "attempt numbers keep growing");
    assert_eq!(c.settings.max_attempts, 4, "a fresh set of attempts");
    assert_eq!(
        view(&*q, id).attempts.len(),
        2,
        "earlier attempts stay in the record"
    );
}

/// A deleted job's id is never given to another job, even when every job
/// with a larger id was deleted too (plain jobs and named ones, which are
/// added another way). A queue that deletes nothing passes.
pub fn ids_of_deleted_jobs_are_never_given_again(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let mut named = job("t", 1, 0);
    named.name = Some("n".into());
    let mut last = 0;
    for batch in [vec![job("t", 1, 0), job("t", 1, 0)], vec![named]] {
        let added = ids(&q.enqueue(batch.clone()).unwrap());
        assert!(added.iter().all(|i| i.0 > last), "{added:?} after {last}");
        last = added.iter().map(|i| i.0).max().unwrap();
        for c in q.claim("w", 10, LEASE).unwrap() {
            succeed(&*q, "w", &c).unwrap();
        }
        match q.admin().unwrap().delete(&added) {
            Ok(d) => assert!(d.iter().all(|d| *d == Deleted::Deleted), "{d:?}"),
            Err(e) => {
                assert_eq!(e.kind(), QueueErrorKind::Unsupported, "{e}");
                return;
            }
        }
        let again = ids(&q.enqueue(batch).unwrap());
        assert!(
            again.iter().all(|i| i.0 > last),
            "ids {again:?} were given again: every job up to {last} was deleted"
        );
        last = again.iter().map(|i| i.0).max().unwrap();
        for c in q.claim("w", 10, LEASE).unwrap() {
            succeed(&*q, "w", &c).unwrap();
        }
        q.admin().unwrap().delete(&again).unwrap();
    }
}

/// A job that has not finished is not deleted, and the answer names its
/// state: queued, scheduled (run-at ahead), running. A queue that deletes
/// nothing passes.
pub fn an_unfinished_job_is_not_deleted_and_its_state_is_said(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let mut later = job("t", 1, 0);
    later.run_at = Some(q.now() + Duration::from_secs(600));
    let e = ids(&q
        .enqueue(vec![job("t", 1, 0), later, job("t", 1, 0)])
        .unwrap());
    let running = q.claim("w", 1, LEASE).unwrap().remove(0);
    q.started("w", &[(running.lease(), q.now())]).unwrap();
    let queued = if running.id == e[0] { e[2] } else { e[0] };
    let d = match q.admin().unwrap().delete(&[queued, e[1], running.id]) {
        Ok(d) => d,
        Err(e) => {
            assert_eq!(e.kind(), QueueErrorKind::Unsupported, "{e}");
            return;
        }
    };
    assert_eq!(
        d,
        vec![
            Deleted::NotFinished(JobState::Queued),
            Deleted::NotFinished(JobState::Scheduled),
            Deleted::NotFinished(JobState::Running),
        ]
    );
}

pub fn list_get_and_counts(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let e = ids(&q
        .enqueue(
            (0..10)
                .map(|i| job(if i % 2 == 0 { "even" } else { "odd" }, 1, 0))
                .collect(),
        )
        .unwrap());
    for c in q.claim("w", 3, LEASE).unwrap() {
        succeed(&*q, "w", &c).unwrap();
    }
    let all = q.inspect().unwrap().list(&ListFilter::default()).unwrap();
    assert_eq!(all.iter().map(|v| v.id).collect::<Vec<_>>(), e);
    let even = q
        .inspect()
        .unwrap()
        .list(&ListFilter {
            task: Some("even".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(even.len(), 5);
    assert!(even.iter().all(|v| v.task == "even"));
    let done = q
        .inspect()
        .unwrap()
        .list(&ListFilter {
            state: Some(JobState::Succeeded),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(done.len(), 3);
    let page = q
        .inspect()
        .unwrap()
        .list(&ListFilter {
            after: Some(e[3]),
            limit: 4,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        page.iter().map(|v| v.id).collect::<Vec<_>>(),
        e[4..8].to_vec()
    );
    assert!(q
        .inspect()
        .unwrap()
        .list(&ListFilter {
            task: Some("none".into()),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
    assert!(q.inspect().unwrap().get(JobId(999_999)).unwrap().is_none());
    let c = q.counts().unwrap();
    assert_eq!((c.queued, c.succeeded, c.total()), (7, 3, 10));
    // Claimed in id order: jobs 0 and 2 are even, 1 is odd.
    let by = q.inspect().unwrap().counts_by_task().unwrap();
    let names: Vec<&str> = by.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["even", "odd"]);
    assert_eq!((by[0].1.succeeded, by[0].1.queued), (2, 3));
    assert_eq!((by[1].1.succeeded, by[1].1.queued), (1, 4));
}

/// Claims are made ahead of time: a claimed job counts as `running` once
/// its attempt has started, and as `queued` until then, in the totals and
/// per task.
pub fn a_claim_counts_as_running_only_once_started(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let e = ids(&q
        .enqueue(
            (0..6)
                .map(|i| job(if i < 4 { "a" } else { "b" }, 2, 0))
                .collect(),
        )
        .unwrap());
    let claimed = q.claim("w", 5, LEASE).unwrap();
    assert_eq!(claimed.len(), 5);
    let counts = |q: &dyn Queue| {
        let c = q.counts().unwrap();
        let by = q.inspect().unwrap().counts_by_task().unwrap();
        let per_task: Vec<(String, u64, u64)> = by
            .iter()
            .map(|(t, c)| (t.clone(), c.queued, c.running))
            .collect();
        ((c.queued, c.running, c.succeeded, c.total()), per_task)
    };
    let row = |t: &str, queued, running| (t.to_string(), queued, running);
    assert_eq!(
        counts(&*q),
        ((6, 0, 0, 6), vec![row("a", 4, 0), row("b", 2, 0)]),
        "claimed, none started"
    );
    let (a0, a1, b0) = (&claimed[0], &claimed[1], &claimed[4]);
    assert_eq!((a0.id, b0.id), (e[0], e[4]));
    // Views and listings by state agree with the counts.
    let running = |q: &dyn Queue| -> Vec<JobId> {
        let filter = ListFilter {
            state: Some(JobState::Running),
            ..ListFilter::default()
        };
        let list = q.inspect().unwrap().list(&filter).unwrap();
        list.iter().map(|v| v.id).collect()
    };
    let queued = ListFilter {
        state: Some(JobState::Queued),
        ..ListFilter::default()
    };
    assert_eq!(running(&*q), Vec::<JobId>::new());
    assert_eq!(state(&*q, a0.id), JobState::Queued, "claimed, not started");
    assert_eq!(q.inspect().unwrap().list(&queued).unwrap().len(), 6);
    q.started("w", &[(a0.lease(), q.now()), (b0.lease(), q.now())])
        .unwrap();
    assert_eq!(running(&*q), vec![e[0], e[4]]);
    assert_eq!(state(&*q, a0.id), JobState::Running);
    assert_eq!(q.inspect().unwrap().list(&queued).unwrap().len(), 4);
    assert_eq!(
        counts(&*q),
        ((4, 2, 0, 6), vec![row("a", 3, 1), row("b", 1, 1)])
    );
    // A start told twice counts once; one for a lease not held, not at all.
    q.started("w", &[(a0.lease(), q.now())]).unwrap();
    q.started("other", &[(a1.lease(), q.now())]).unwrap();
    assert_eq!(counts(&*q).0, (4, 2, 0, 6));
    // An attempt that ends is no longer running; a claim given back
    // unstarted stays queued.
    succeed(&*q, "w", a0).unwrap();
    q.release("w", &[a1.lease()]).unwrap();
    assert_eq!(
        counts(&*q),
        ((4, 1, 1, 6), vec![row("a", 3, 0), row("b", 1, 1)])
    );
}

pub fn claims_can_be_limited_to_tasks(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let e = ids(&q
        .enqueue(vec![
            job("a", 1, 0),
            job("b", 1, 0),
            job("a", 1, 0),
            job("c", 1, 0),
        ])
        .unwrap());
    let only: Vec<crate::TaskName> = vec!["b".into(), "c".into()];
    let got: Vec<JobId> = q
        .claim_tasks("w", 10, LEASE, Some(&only))
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got, vec![e[1], e[3]]);
    let none: Vec<crate::TaskName> = vec!["zzz".into()];
    assert!(q
        .claim_tasks("w", 10, LEASE, Some(&none))
        .unwrap()
        .is_empty());
    let rest: Vec<JobId> = q
        .claim("w", 10, LEASE)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(rest, vec![e[0], e[2]], "skipped jobs keep their place");
    let one = q.enqueue_one(job("a", 1, 0)).unwrap();
    assert!(matches!(one, Enqueued::New(_)));
}

pub fn outputs_and_errors_round_trip(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let e = ids(&q.enqueue(vec![job("t", 1, 0), job("t", 1, 0)]).unwrap());
    let c = q.claim("w", 2, LEASE).unwrap();
    let out = Output::from_serialize(&serde_json::json!({"status": 200, "bytes": [1, 2]})).unwrap();
    let mut failed = record(&*q, c[1].lease(), OutcomeKind::Panicked);
    failed.error = Some(Box::new(AttemptError {
        message: "panicked: index out of bounds".into(),
        permanent: true,
        detail: Some(
            serde_json::value::to_raw_value(&serde_json::json!({"signal": "SIGSEGV"})).unwrap(),
        ),
    }));
    q.complete(
        "w",
        &[
            Completion {
                lease: c[0].lease(),
                record: record(&*q, c[0].lease(), OutcomeKind::Succeeded),
                verdict: Verdict::Succeeded(out.clone()),
            },
            Completion {
                lease: c[1].lease(),
                record: failed.clone(),
                verdict: Verdict::Dead,
            },
        ],
    )
    .unwrap();
    let ok = view(&*q, e[0]);
    assert_eq!(ok.output, out);
    assert_eq!(ok.attempts[0].duration(), Duration::from_millis(2));
    assert_eq!(ok.attempts[0].queued(), Duration::from_millis(1));
    let dead = view(&*q, e[1]);
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts[0], failed);
    assert!(dead.output.is_none());
}

/// Random enqueues, claims, completions, releases, cancels and lease
/// expiries; then every job is driven to the end. Every job must end in
/// exactly one terminal state, appear once in `list`, and carry attempts
/// numbered 1, 2, 3, ...
pub fn nothing_lost_under_random_operations(make: Factory<'_>) {
    for seed in 0..4u64 {
        let (clock, q) = fresh(make);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut enqueued: Vec<JobId> = Vec::new();
        let mut held: Vec<(String, Claimed)> = Vec::new();
        for _ in 0..400 {
            match rng.u8(0..10) {
                0..=2 => {
                    let n = rng.usize(1..20);
                    let batch = (0..n)
                        .map(|_| job("t", rng.u32(1..4), rng.i32(-1..2)))
                        .collect();
                    enqueued.extend(ids(&q.enqueue(batch).unwrap()));
                }
                3..=4 => {
                    let w = format!("w{}", rng.u8(0..3));
                    for c in q
                        .claim(&w, rng.usize(1..8), Duration::from_secs(rng.u64(1..20)))
                        .unwrap()
                    {
                        if rng.bool() {
                            q.started(&w, &[(c.lease(), q.now())]).unwrap();
                        }
                        held.push((w.clone(), c));
                    }
                }
                5..=6 if !held.is_empty() => {
                    let (w, c) = held.swap_remove(rng.usize(0..held.len()));
                    let (outcome, verdict) = match rng.u8(0..4) {
                        0 => (OutcomeKind::Succeeded, Verdict::Succeeded(Output::none())),
                        1 if c.attempt < c.settings.max_attempts => (
                            OutcomeKind::Failed,
                            Verdict::Retry {
                                at: q.now().saturating_add(Duration::from_secs(rng.u64(0..5))),
                            },
                        ),
                        2 => (OutcomeKind::Failed, Verdict::Dead),
                        _ => (OutcomeKind::Cancelled, Verdict::Cancelled),
                    };
                    let done = Completion {
                        lease: c.lease(),
                        record: record(&*q, c.lease(), outcome),
                        verdict,
                    };
                    // May be fenced: its lease may have expired and been rescued.
                    let _ = q.complete(&w, &[done]).unwrap();
                }
                7 if !held.is_empty() => {
                    let (w, c) = held.swap_remove(rng.usize(0..held.len()));
                    let _ = q.release(&w, &[c.lease()]).unwrap();
                }
                8 if !enqueued.is_empty() => {
                    let id = enqueued[rng.usize(0..enqueued.len())];
                    q.admin().unwrap().cancel(&[id]).unwrap();
                }
                _ => {
                    clock.advance(Duration::from_secs(rng.u64(0..10)));
                    q.rescue(Rescue::Expired).unwrap();
                }
            }
        }
        // Drive everything to the end: expire every lease, then run what is left.
        clock.advance(Duration::from_secs(3600));
        q.rescue(Rescue::Expired).unwrap();
        for _ in 0..10_000 {
            if q.counts().unwrap().unfinished() == 0 {
                break;
            }
            clock.advance(Duration::from_secs(10));
            for c in q.claim("final", 64, LEASE).unwrap() {
                succeed(&*q, "final", &c).unwrap();
            }
        }
        let all = q.inspect().unwrap().list(&ListFilter::default()).unwrap();
        let mut seen: HashMap<JobId, usize> = HashMap::new();
        for v in &all {
            *seen.entry(v.id).or_default() += 1;
            assert!(
                v.state.is_terminal(),
                "seed {seed}: job {} ended {:?}",
                v.id,
                v.state
            );
            let numbers: Vec<u32> = v.attempts.iter().map(|a| a.number).collect();
            let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
            assert_eq!(
                numbers, expected,
                "seed {seed}: job {} attempt numbers",
                v.id
            );
            if v.state == JobState::Succeeded {
                assert_eq!(v.attempts.last().unwrap().outcome, OutcomeKind::Succeeded);
                assert_eq!(
                    v.attempts
                        .iter()
                        .filter(|a| a.outcome == OutcomeKind::Succeeded)
                        .count(),
                    1,
                    "seed {seed}: a job succeeds once"
                );
            }
        }
        assert_eq!(all.len(), enqueued.len(), "seed {seed}: every job appears");
        assert!(seen.values().all(|&n| n == 1), "seed {seed}: once");
        assert_eq!(
            BTreeSet::from_iter(enqueued.iter()),
            BTreeSet::from_iter(seen.keys())
        );
        let c = q.counts().unwrap();
        assert_eq!(c.total(), enqueued.len() as u64);
        for s in JobState::ALL {
            assert_eq!(
                c.get(s),
                all.iter().filter(|v| v.state == s).count() as u64,
                "seed {seed}: count of {s}"
            );
        }
    }
}

/// A plain model of the lifecycle, for [`agrees_with_a_model_step_by_step`].
mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    pub(super) enum Op {
        Enqueue { n: u8, max: u32, later: bool },
        Claim { worker: u8, n: u8, lease: u8 },
        Start(usize),
        Verdict(usize, u8),
        Release(usize),
        Cancel(usize),
        Heartbeat(usize),
        Advance(u8),
        Rescue,
    }

    pub(super) fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u8..4, 1u32..4, proptest::bool::weighted(0.2)).prop_map(|(n, max, later)| Op::Enqueue { n, max, later }),
            3 => (0u8..2, 1u8..4, 1u8..10).prop_map(|(worker, n, lease)| Op::Claim { worker, n, lease }),
            2 => any::<usize>().prop_map(Op::Start),
            3 => (any::<usize>(), 0u8..4).prop_map(|(i, k)| Op::Verdict(i, k)),
            1 => any::<usize>().prop_map(Op::Release),
            1 => any::<usize>().prop_map(Op::Cancel),
            1 => any::<usize>().prop_map(Op::Heartbeat),
            2 => (1u8..8).prop_map(Op::Advance),
            1 => Just(Op::Rescue),
        ]
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum S {
        Waiting,
        Running,
        Succeeded,
        Dead,
        Cancelled,
    }

    #[derive(Debug, Clone)]
    pub(super) struct Job {
        pub(super) id: JobId,
        pub(super) state: S,
        pub(super) attempt: u32,
        pub(super) max: u32,
        pub(super) ready_at: i64,
        pub(super) worker: String,
        pub(super) lease_until: i64,
        pub(super) started: bool,
        pub(super) lost: u32,
        /// Claims made, undone ones included: the fencing token.
        pub(super) claims: u64,
        pub(super) outcomes: Vec<OutcomeKind>,
        /// Its place in the fair order, while due (`docs/backends.md` §8).
        pub(super) tag: Option<u64>,
    }

    /// The frontier: the smallest tag of a waiting job, or one more than
    /// the largest tag given when none waits.
    pub(super) fn frontier(jobs: &[Job], next_tag: u64) -> u64 {
        jobs.iter()
            .filter(|j| j.state == S::Waiting)
            .filter_map(|j| j.tag)
            .min()
            .unwrap_or(next_tag)
    }

    impl Job {
        pub(super) fn holds(&self, worker: &str, lease: Lease) -> bool {
            self.state == S::Running
                && self.attempt == lease.attempt
                && self.claims == lease.claim
                && self.worker == worker
        }

        pub(super) fn state_at(&self, now: i64) -> JobState {
            match self.state {
                S::Waiting if self.ready_at > now => JobState::Scheduled,
                S::Waiting => JobState::Queued,
                S::Running => JobState::Running,
                S::Succeeded => JobState::Succeeded,
                S::Dead => JobState::Dead,
                S::Cancelled => JobState::Cancelled,
            }
        }

        /// The state it is counted in: a claim not started is queued.
        pub(super) fn counted_at(&self, now: i64) -> JobState {
            match self.state_at(now) {
                JobState::Running if !self.started => JobState::Queued,
                s => s,
            }
        }
    }
}

/// Random operations, applied to the queue and to a plain model of the job
/// lifecycle; after every step each job's state and attempts must agree.
pub fn agrees_with_a_model_step_by_step(make: Factory<'_>) {
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let ops = proptest::collection::vec(model::op(), 1..60);
    runner
        .run(&ops, |ops| check_against_model(make, ops))
        .unwrap();
}

/// A sequence [`agrees_with_a_model_step_by_step`] once found: two jobs
/// become due while nothing waits, after an insert of jobs not yet due;
/// the first claim after their run-at tags them at the frontier, one more
/// than the largest tag given (the insert gave none), so after a rescue
/// and a later batch the earlier of them is claimed first.
pub fn jobs_due_after_an_insert_that_tagged_nothing_keep_their_place(make: Factory<'_>) {
    use model::Op;
    let ops = vec![
        Op::Enqueue {
            n: 2,
            max: 1,
            later: false,
        },
        Op::Claim {
            worker: 0,
            n: 2,
            lease: 1,
        },
        Op::Enqueue {
            n: 2,
            max: 1,
            later: true,
        },
        Op::Advance(5),
        Op::Verdict(0, 0),
        Op::Claim {
            worker: 0,
            n: 1,
            lease: 1,
        },
        Op::Cancel(1),
        Op::Advance(7),
        Op::Rescue,
        Op::Enqueue {
            n: 3,
            max: 2,
            later: false,
        },
        Op::Cancel(1),
        Op::Claim {
            worker: 1,
            n: 1,
            lease: 3,
        },
    ];
    if let Err(e) = check_against_model(make, ops) {
        panic!("{e}");
    }
}

/// Applies `ops` to a fresh queue and to the model, checking after every
/// step that each job's state and attempts agree.
fn check_against_model(
    make: Factory<'_>,
    ops: Vec<model::Op>,
) -> Result<(), proptest::test_runner::TestCaseError> {
    use model::{Job, Op, S};
    use proptest::prop_assert_eq;

    let (clock, q) = fresh(make);
    let mut jobs: Vec<Job> = Vec::new();
    let mut held: Vec<(String, Lease)> = Vec::new();
    // One more than the largest tag given so far.
    let mut next_tag = 0u64;
    // The last tag given to a job inserted due: these jobs have no
    // fairness key, so they are one group (the empty key's).
    let mut last_keyless: Option<u64> = None;
    // A queue that keeps limits claims in fair order (by tag); one
    // that does not yet, by ready-at.
    let fair = q.capabilities().has(crate::Capability::Limits);
    for op in ops {
        let now = q.now().as_micros();
        match op {
            Op::Enqueue { n, max, later } => {
                let run_at = later.then(|| q.now().saturating_add(Duration::from_secs(5)));
                let batch: Vec<NewJob> = (0..n)
                    .map(|_| NewJob {
                        run_at,
                        ..job("t", max, 0)
                    })
                    .collect();
                let v = model::frontier(&jobs, next_tag);
                for e in q.enqueue(batch).unwrap() {
                    // tag = max(last('') + 1, V), and last('') = tag.
                    let tag = (!later).then(|| last_keyless.map_or(v, |l| (l + 1).max(v)));
                    if let Some(t) = tag {
                        last_keyless = Some(t);
                        next_tag = next_tag.max(t + 1);
                    }
                    jobs.push(Job {
                        tag,
                        id: e.id(),
                        state: S::Waiting,
                        attempt: 0,
                        max,
                        ready_at: run_at.map_or(now, |t| t.as_micros()),
                        worker: String::new(),
                        lease_until: 0,
                        started: false,
                        lost: 0,
                        claims: 0,
                        outcomes: Vec::new(),
                    });
                }
            }
            Op::Claim { worker, n, lease } => {
                let w = format!("w{worker}");
                let lease = Duration::from_secs(lease as u64);
                let got = q.claim(&w, n as usize, lease).unwrap();
                // The claim tags the jobs that became due: the frontier.
                let v = model::frontier(&jobs, next_tag);
                for j in jobs.iter_mut() {
                    if j.state == S::Waiting && j.tag.is_none() && j.ready_at <= now {
                        j.tag = Some(v);
                        next_tag = next_tag.max(v + 1);
                    }
                }
                let mut ready: Vec<usize> = (0..jobs.len())
                    .filter(|&i| jobs[i].state == S::Waiting && jobs[i].ready_at <= now)
                    .collect();
                if fair {
                    ready.sort_by_key(|&i| (jobs[i].tag, jobs[i].id));
                } else {
                    ready.sort_by_key(|&i| (jobs[i].ready_at, jobs[i].id));
                }
                ready.truncate(n as usize);
                let want: Vec<JobId> = ready.iter().map(|&i| jobs[i].id).collect();
                let have: Vec<JobId> = got.iter().map(|c| c.id).collect();
                prop_assert_eq!(have, want, "claim order");
                for (c, &i) in got.iter().zip(&ready) {
                    let j = &mut jobs[i];
                    j.attempt += 1;
                    j.claims += 1;
                    j.state = S::Running;
                    j.worker = w.clone();
                    j.lease_until = now + lease.as_micros() as i64;
                    j.started = false;
                    prop_assert_eq!(c.attempt, j.attempt);
                    proptest::prop_assert!(
                        held.iter().all(|(_, h)| *h != c.lease()),
                        "a fencing token never repeats"
                    );
                    held.push((w.clone(), c.lease()));
                }
            }
            Op::Start(i) if !held.is_empty() => {
                let (w, l) = held[i % held.len()].clone();
                q.started(&w, &[(l, q.now())]).unwrap();
                if let Some(j) = jobs.iter_mut().find(|j| j.id == l.job && j.holds(&w, l)) {
                    j.started = true;
                }
            }
            Op::Verdict(i, kind) if !held.is_empty() => {
                let (w, l) = held.remove(i % held.len());
                let j = jobs.iter_mut().find(|j| j.id == l.job).expect("known");
                let holds = j.holds(&w, l);
                let (outcome, finish) = match kind {
                    0 => (OutcomeKind::Succeeded, Verdict::Succeeded(Output::none())),
                    1 if l.attempt < j.max => (OutcomeKind::Failed, Verdict::Retry { at: q.now() }),
                    2 | 1 => (OutcomeKind::Failed, Verdict::Dead),
                    _ => (OutcomeKind::Cancelled, Verdict::Cancelled),
                };
                let r = q
                    .complete(
                        &w,
                        &[Completion {
                            lease: l,
                            record: record(&*q, l, outcome),
                            verdict: finish.clone(),
                        }],
                    )
                    .unwrap();
                prop_assert_eq!(r.results[0].is_ok(), holds, "fencing");
                if holds {
                    j.outcomes.push(outcome);
                    // A retry due now is tagged at the frontier.
                    let v = model::frontier(&jobs, next_tag);
                    let j = jobs.iter_mut().find(|j| j.id == l.job).expect("known");
                    j.state = match finish {
                        Verdict::Succeeded(_) => S::Succeeded,
                        Verdict::Retry { .. } => {
                            j.ready_at = now;
                            j.tag = Some(v);
                            next_tag = next_tag.max(v + 1);
                            S::Waiting
                        }
                        Verdict::Dead => S::Dead,
                        Verdict::Cancelled => S::Cancelled,
                    };
                }
            }
            Op::Release(i) if !held.is_empty() => {
                let (w, l) = held.remove(i % held.len());
                let j = jobs.iter_mut().find(|j| j.id == l.job).expect("known");
                let holds = j.holds(&w, l);
                prop_assert_eq!(q.release(&w, &[l]).unwrap()[0].is_ok(), holds, "fencing");
                if holds {
                    j.attempt -= 1;
                    j.state = S::Waiting;
                    j.ready_at = j.ready_at.min(now);
                }
            }
            Op::Cancel(i) if !jobs.is_empty() => {
                let n = jobs.len();
                let j = &mut jobs[i % n];
                let r = q.admin().unwrap().cancel(&[j.id]).unwrap().results[0];
                let want = match j.state {
                    S::Waiting => {
                        j.state = S::Cancelled;
                        CancelResult::Cancelled
                    }
                    S::Running => CancelResult::Requested,
                    _ => CancelResult::AlreadyFinished(j.state_at(now)),
                };
                prop_assert_eq!(r, want);
            }
            Op::Heartbeat(i) if !held.is_empty() => {
                let (w, l) = held[i % held.len()].clone();
                let reply = q.heartbeat(&w, &[l], Duration::from_secs(5)).unwrap();
                let j = jobs.iter_mut().find(|j| j.id == l.job).expect("known");
                let holds = j.holds(&w, l);
                prop_assert_eq!(reply.lost.is_empty(), holds, "heartbeat");
                if holds {
                    j.lease_until = now + 5_000_000;
                }
            }
            Op::Advance(s) => clock.advance(Duration::from_secs(s as u64)),
            Op::Rescue => {
                let mut got = q.rescue(Rescue::Expired).unwrap().ids;
                got.sort();
                let mut want = Vec::new();
                for j in jobs
                    .iter_mut()
                    .filter(|j| j.state == S::Running && j.lease_until < now)
                {
                    want.push(j.id);
                    if j.started || j.lost >= j.max {
                        j.outcomes.push(OutcomeKind::Crashed);
                        j.state = if j.attempt >= j.max {
                            S::Dead
                        } else {
                            S::Waiting
                        };
                        j.ready_at = now;
                    } else {
                        j.attempt -= 1;
                        j.lost += 1;
                        j.state = S::Waiting;
                        j.ready_at = j.ready_at.min(now);
                    }
                }
                want.sort();
                prop_assert_eq!(got, want, "rescued");
            }
            _ => {}
        }
        let now = q.now().as_micros();
        let mut want = crate::Counts::default();
        for j in &jobs {
            *want.get_mut(j.counted_at(now)) += 1;
        }
        prop_assert_eq!(q.counts().unwrap(), want, "counts");
        for j in &jobs {
            // A view shows the state it is counted in.
            let v = q.inspect().unwrap().get(j.id).unwrap().expect("exists");
            prop_assert_eq!(v.state, j.counted_at(now), "state of job {}", j.id);
            let outcomes: Vec<OutcomeKind> = v.attempts.iter().map(|a| a.outcome).collect();
            prop_assert_eq!(&outcomes, &j.outcomes, "attempts of job {}", j.id);
        }
    }
    Ok(())
}

pub fn the_latest_waker_is_called(make: Factory<'_>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let (_, q) = fresh(make);
    let (first, second) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let f = Arc::clone(&first);
    q.set_waker(Arc::new(move || {
        f.fetch_add(1, Ordering::SeqCst);
    }));
    q.enqueue(vec![job("t", 1, 0)]).unwrap();
    assert!(
        first.load(Ordering::SeqCst) >= 1,
        "an enqueue wakes the worker"
    );
    // A second run on the same queue sets its own waker.
    let s = Arc::clone(&second);
    q.set_waker(Arc::new(move || {
        s.fetch_add(1, Ordering::SeqCst);
    }));
    let before = first.load(Ordering::SeqCst);
    q.enqueue(vec![job("t", 1, 0)]).unwrap();
    assert!(
        second.load(Ordering::SeqCst) >= 1,
        "the new waker is called"
    );
    assert_eq!(
        first.load(Ordering::SeqCst),
        before,
        "the old one no longer"
    );
}

fn worker_info(name: &str, host: &str, pid: u32, lease: Duration) -> WorkerInfo {
    WorkerInfo {
        name: name.into(),
        host: host.into(),
        pid,
        lease,
    }
}

pub fn a_live_worker_holds_its_name_until_its_heartbeat_lapses(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let lease = Duration::from_secs(10);
    let a = worker_info("w", "host-a", 11, lease);
    let b = worker_info("w", "host-b", 22, lease);
    assert_eq!(
        q.inspect().unwrap().live_workers().unwrap(),
        Vec::<LiveWorker>::new()
    );
    q.register_worker(&a).unwrap().expect("a free name");
    let started = q.now();

    // Its leases are counted with it.
    q.enqueue(vec![job("t", 1, 0), job("t", 1, 0)]).unwrap();
    let claimed = q.claim("w", 2, lease).unwrap();
    let live = q.inspect().unwrap().live_workers().unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].worker, a);
    assert_eq!(live[0].started_at, started);
    assert_eq!(
        live[0].last_heartbeat, started,
        "registering is a heartbeat"
    );
    assert_eq!(live[0].leases, 2);

    // A second worker of the name is refused, and told who holds it.
    let NameTaken(holder) = q.register_worker(&b).unwrap().unwrap_err();
    assert_eq!(holder.worker, a);
    assert_eq!((holder.started_at, holder.leases), (started, 2));

    // Heartbeats keep it live, with leases and without (an idle worker).
    clock.advance(Duration::from_secs(8));
    let leases: Vec<Lease> = claimed.iter().map(Claimed::lease).collect();
    q.heartbeat("w", &leases, lease).unwrap();
    for c in &claimed {
        succeed(&*q, "w", c).expect("lease held");
    }
    clock.advance(Duration::from_secs(8));
    q.heartbeat("w", &[], lease).unwrap();
    let beat = q.now();
    clock.advance(Duration::from_secs(8));
    assert!(
        q.register_worker(&b).unwrap().is_err(),
        "live 24 s after registering: it heartbeats"
    );
    let live = q.inspect().unwrap().live_workers().unwrap();
    assert_eq!((live[0].last_heartbeat, live[0].leases), (beat, 0));

    // Once its heartbeat has lapsed it is gone, and its name is free.
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        q.inspect().unwrap().live_workers().unwrap(),
        Vec::<LiveWorker>::new()
    );
    q.register_worker(&b)
        .unwrap()
        .expect("a lapsed holder's name is taken over");
    let live = q.inspect().unwrap().live_workers().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!((&live[0].worker, live[0].started_at), (&b, q.now()));
    let NameTaken(holder) = q.register_worker(&a).unwrap().unwrap_err();
    assert_eq!(holder.worker, b, "the new holder keeps the name");
}

pub fn unregistering_frees_a_name_and_only_registered_workers_are_listed(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let lease = Duration::from_secs(10);
    let a = worker_info("a", "host", 1, lease);
    let b = worker_info("b", "host", 2, Duration::from_secs(60));
    q.register_worker(&a).unwrap().unwrap();
    q.register_worker(&b).unwrap().unwrap();
    // A worker that holds leases without registering is no live worker.
    q.enqueue(vec![job("t", 1, 0)]).unwrap();
    q.claim("unregistered", 1, lease).unwrap();
    q.heartbeat("unregistered", &[], lease).unwrap();
    let names = |q: &dyn Queue| -> Vec<String> {
        q.inspect()
            .unwrap()
            .live_workers()
            .unwrap()
            .into_iter()
            .map(|w| w.worker.name)
            .collect()
    };
    assert_eq!(names(&*q), ["a", "b"], "by name");
    // Each worker lapses by its own lease.
    clock.advance(Duration::from_secs(30));
    assert_eq!(names(&*q), ["b"]);
    q.unregister_worker("b").unwrap();
    assert!(
        names(&*q).is_empty(),
        "a worker that stopped is gone at once"
    );
    let other = worker_info("b", "elsewhere", 3, lease);
    q.register_worker(&other)
        .unwrap()
        .expect("its name is free at once");
    assert_eq!(
        q.inspect().unwrap().live_workers().unwrap()[0].worker,
        other
    );
}
