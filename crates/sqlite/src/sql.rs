//! The SQLite queue's statements: one file each under `sql/`, with state
//! codes written by name (`{RUNNING}`) and rendered once, at first use,
//! from `runyard_queue::stored` (see `stored::render_states`).

use std::sync::LazyLock;

macro_rules! statements {
    ($($name:ident = $file:literal;)*) => {
        /// Every statement, rendered.
        pub(crate) struct Sql {
            $(pub(crate) $name: String,)*
        }

        /// The statements, rendered once.
        pub(crate) static SQL: LazyLock<Sql> = LazyLock::new(|| Sql {
            $($name: runyard_queue::stored::render_states(include_str!(concat!("../sql/", $file))),)*
        });

        #[cfg(test)]
        const FILES: &[(&str, &str)] = &[$(($file, include_str!(concat!("../sql/", $file))),)*];
    };
}

/// `list.sql` for a state whose jobs all have one state code (every state
/// but `queued`, whose jobs are waiting or claimed and not started): the
/// code is ?10, so that the jobs are read from the state index in id order
/// rather than by scanning the table.
pub(crate) static LIST_ONE_CODE: LazyLock<String> = LazyLock::new(|| {
    let with = SQL
        .list
        .replacen("WHERE j.id > ?1", "WHERE j.state = ?10 AND j.id > ?1", 1);
    assert_ne!(with, SQL.list, "list.sql filters by id first");
    with
});

statements! {
    add_child = "add_child.sql";
    ask_cancel = "ask_cancel.sql";
    attempts = "attempts.sql";
    attempts_of = "attempts_of.sql";
    cancel_blocked = "cancel_blocked.sql";
    cancel_job = "cancel_job.sql";
    cancel_pending = "cancel_pending.sql";
    children = "children.sql";
    claim = "claim.sql";
    claim_ids = "claim_ids.sql";
    claim_tasks = "claim_tasks.sql";
    claim_window = "claim_window.sql";
    counts = "counts.sql";
    counts_add = "counts_add.sql";
    counts_by_task = "counts_by_task.sql";
    counts_kept_by_task = "counts_kept_by_task.sql";
    counts_succeeded = "counts_succeeded.sql";
    delete_attempts = "delete_attempts.sql";
    delete_check = "delete_check.sql";
    delete_edges = "delete_edges.sql";
    delete_job = "delete_job.sql";
    dependents = "dependents.sql";
    drop_lapsed_workers = "drop_lapsed_workers.sql";
    edges_between = "edges_between.sql";
    edges_of = "edges_of.sql";
    events_add = "events_add.sql";
    events_page = "events_page.sql";
    fair_get = "fair_get.sql";
    fair_head = "fair_head.sql";
    fair_set = "fair_set.sql";
    find_key = "find_key.sql";
    finish = "finish.sql";
    finished_per_minute = "finished_per_minute.sql";
    flow_state = "flow_state.sql";
    heartbeat = "heartbeat.sql";
    hold_job = "hold_job.sql";
    hold_window = "hold_window.sql";
    id_bounds = "id_bounds.sql";
    id_floor = "id_floor.sql";
    id_floor_raise = "id_floor_raise.sql";
    insert_attempt = "insert_attempt.sql";
    insert_edge = "insert_edge.sql";
    insert_job = "insert_job.sql";
    insert_linked_job = "insert_linked_job.sql";
    job_state = "job_state.sql";
    last_id = "last_id.sql";
    lease_holders = "lease_holders.sql";
    limit_clear = "limit_clear.sql";
    limit_set = "limit_set.sql";
    limited = "limited.sql";
    limits_all = "limits_all.sql";
    list = "list.sql";
    list_v3 = "list_v3.sql";
    list_v5 = "list_v5.sql";
    live_workers = "live_workers.sql";
    meta_get = "meta_get.sql";
    meta_set = "meta_set.sql";
    next_due = "next_due.sql";
    next_due_v4 = "next_due_v4.sql";
    next_later = "next_later.sql";
    parent_outputs = "parent_outputs.sql";
    parent_states = "parent_states.sql";
    pause = "pause.sql";
    paused_tasks = "paused_tasks.sql";
    pending_left = "pending_left.sql";
    promote = "promote.sql";
    prune_ids = "prune_ids.sql";
    reblock = "reblock.sql";
    recount = "recount.sql";
    register_worker = "register_worker.sql";
    release = "release.sql";
    release_job = "release_job.sql";
    renew_worker = "renew_worker.sql";
    requeue = "requeue.sql";
    rescue_expired = "rescue_expired.sql";
    rescue_worker = "rescue_worker.sql";
    restore_worker = "restore_worker.sql";
    resume = "resume.sql";
    resume_all = "resume_all.sql";
    retry = "retry.sql";
    retry_row = "retry_row.sql";
    running_counts = "running_counts.sql";
    schedule_add = "schedule_add.sql";
    schedule_change = "schedule_change.sql";
    schedule_fired_now = "schedule_fired_now.sql";
    schedule_get = "schedule_get.sql";
    schedule_pause = "schedule_pause.sql";
    schedule_remove = "schedule_remove.sql";
    schedule_settle = "schedule_settle.sql";
    schedules_due = "schedules_due.sql";
    schedules_next = "schedules_next.sql";
    set_cause = "set_cause.sql";
    started = "started.sql";
    starts_add = "starts_add.sql";
    starts_count = "starts_count.sql";
    starts_drop = "starts_drop.sql";
    starts_oldest = "starts_oldest.sql";
    tables = "tables.sql";
    tag_job = "tag_job.sql";
    undo_claim = "undo_claim.sql";
    unique_holders = "unique_holders.sql";
    unique_replace = "unique_replace.sql";
    unique_within = "unique_within.sql";
    unregister_worker = "unregister_worker.sql";
    unstarted = "unstarted.sql";
    untagged_due = "untagged_due.sql";
    with_children = "with_children.sql";
    workflow = "workflow.sql";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file is used, renders whole, and names its state codes.
    #[test]
    fn every_statement_renders_with_named_states() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, listed, "every file in sql/ is listed, in order");
        for (file, text) in FILES {
            runyard_queue::stored::check_statement(file, text).unwrap();
        }
        let _ = &SQL.list;
    }
}
