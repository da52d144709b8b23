-- Adds a job that has a name or parents, in state ?12 (waiting, blocked or
-- cancelled by cause ?16) with ?15 parents not yet ended as it needs; its
-- unique key and carried limits (?18 to ?24), whether it carries any
-- (?25), its fair tag ?26 (NULL when not due or not waiting), and the
-- schedule ?27 and tick ?28 that made it (NULL for a job no schedule made).
-- Its id is ?29, or when NULL the next after the largest (insert_job.sql).
INSERT INTO runyard_jobs
    (id, task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, idempotency_key, name, run_if, pending, cause, parents,
     unique_key, task_concurrency, task_rate, concurrency_key, key_concurrency, rate_key, key_rate,
     limited, tag, schedule, tick)
VALUES (?29, ?1, ?2, ?12, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
ON CONFLICT (idempotency_key) DO NOTHING
