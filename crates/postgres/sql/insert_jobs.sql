-- Adds jobs given as parallel arrays, in order; a job whose idempotency key
-- is taken is skipped. Due jobs are the keyless fairness group's next
-- tags in batch order (runyard.keyless_tags: after the group's last tag,
-- never below the frontier; a skipped job leaves a gap). The frontier is
-- read only when some job is due: read while nothing waits, it counts as a
-- tag given (runyard.frontier), and a batch of jobs not yet due gives none.
-- Returns the added jobs.
-- (FRONTIER in braces: the frontier, see frontier_few.sql.)
WITH d AS MATERIALIZED (
    SELECT count(*) AS n FROM unnest($5::bigint[]) AS r(at) WHERE r.at <= $1
), f AS MATERIALIZED (
    SELECT CASE WHEN d.n > 0 THEN runyard.keyless_tags(d.n, {FRONTIER}) END AS v FROM d
)
INSERT INTO runyard.jobs
    (task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, idempotency_key, tag)
SELECT j.task, j.params, 0, j.priority, j.run_at, $1, j.max_attempts, j.max_attempts,
       j.backoff, j.timeout_us, j.mode, j.isolate, j.key,
       CASE WHEN j.run_at <= $1 THEN f.v + count(*) FILTER (WHERE j.run_at <= $1) OVER (ORDER BY j.ord) - 1 END
FROM unnest($2::text[], $3::text[], $4::integer[], $5::bigint[], $6::integer[], $7::text[],
            $8::bigint[], $9::text[], $10::boolean[], $11::text[])
    WITH ORDINALITY AS j(task, params, priority, run_at, max_attempts, backoff, timeout_us, mode,
                         isolate, key, ord)
CROSS JOIN f
ORDER BY j.ord
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id, idempotency_key, tag
