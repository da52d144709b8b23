INSERT INTO runyard_jobs
    (task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, idempotency_key)
VALUES (?1, ?2, {WAITING}, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11)
ON CONFLICT (idempotency_key) DO NOTHING
