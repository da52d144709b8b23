-- As insert_jobs.sql, for a batch in which no job has an idempotency key.
WITH d AS MATERIALIZED (
    SELECT count(*) AS n FROM unnest($5::bigint[]) AS r(at) WHERE r.at <= $1
), f AS MATERIALIZED (
    SELECT CASE WHEN d.n > 0 THEN runyard.keyless_tags(d.n, {FRONTIER}) END AS v FROM d
)
INSERT INTO runyard.jobs
    (task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
     backoff, timeout_us, mode, isolate, tag)
SELECT j.task, j.params, 0, j.priority, j.run_at, $1, j.max_attempts, j.max_attempts,
       j.backoff, j.timeout_us, j.mode, j.isolate,
       CASE WHEN j.run_at <= $1 THEN f.v + count(*) FILTER (WHERE j.run_at <= $1) OVER (ORDER BY j.ord) - 1 END
FROM unnest($2::text[], $3::text[], $4::integer[], $5::bigint[], $6::integer[], $7::text[],
            $8::bigint[], $9::text[], $10::boolean[])
    WITH ORDINALITY AS j(task, params, priority, run_at, max_attempts, backoff, timeout_us, mode,
                         isolate, ord)
CROSS JOIN f
ORDER BY j.ord
RETURNING id, NULL::text, tag
