-- Jobs without idempotency keys, in bulk (binary COPY).
COPY runyard.jobs (id, task, params, state, priority, run_at, enqueued_at, max_attempts,
attempts_per_round, backoff, timeout_us, mode, isolate, tag)
FROM STDIN (FORMAT binary)
