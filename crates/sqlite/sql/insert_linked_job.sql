-- Adds a job that has a name or parents, in state ?12 (waiting, blocked or
-- cancelled by cause ?16) with ?15 parents not yet ended as it needs.
INSERT INTO runyard_jobs
    (task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, idempotency_key, name, run_if, pending, cause, parents)
VALUES (?1, ?2, ?12, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15, ?16, ?17)
ON CONFLICT (idempotency_key) DO NOTHING
