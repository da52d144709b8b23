-- Adds a job without name or parents: its settings, its idempotency key
-- ?11, its unique key and carried limits (?12 to ?18), whether it carries
-- any (?19), its fair tag ?20 (NULL when not due), and the schedule ?21 and
-- tick ?22 that made it (NULL for a job no schedule made). Its id is ?23, or
-- when NULL (as it is unless ids above every job were deleted, see
-- id_floor.sql) the next after the largest.
INSERT INTO runyard_jobs
    (id, task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, idempotency_key,
     unique_key, task_concurrency, task_rate, concurrency_key, key_concurrency, rate_key, key_rate,
     limited, tag, schedule, tick)
VALUES (?23, ?1, ?2, {WAITING}, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11,
        ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
ON CONFLICT (idempotency_key) DO NOTHING
