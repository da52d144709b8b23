-- The new jobs of a batch that carry a unique key and nothing else of
-- flow control or workflows (waiting, no name, parents, limits or keys
-- but the unique one), in bulk: copy_jobs.sql's columns and the unique
-- key (binary COPY; for a batch in which no job has an idempotency key).
COPY runyard.jobs (id, task, params, state, priority, run_at, enqueued_at, max_attempts,
attempts_per_round, backoff, timeout_us, mode, isolate, tag, unique_key)
FROM STDIN (FORMAT binary)
