-- The new jobs of a batch as insert_linked.sql adds them, with their flow
-- columns, in bulk (binary COPY; for a batch in which no job has an
-- idempotency key).
COPY runyard.jobs (id, task, params, state, priority, run_at, enqueued_at, finished_at,
max_attempts, attempts_per_round, backoff, timeout_us, mode, isolate, name, run_if, pending,
cause, children, tag, unique_key, task_conc, task_rate_n, task_rate_us, ckey_name, ckey_value,
ckey_conc, rkey_name, rkey_value, rkey_rate_n, rkey_rate_us)
FROM STDIN (FORMAT binary)
