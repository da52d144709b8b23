-- As insert_jobs.sql, for a batch in which no job has an idempotency key
-- (the frontier read as there).
WITH d AS MATERIALIZED (
    SELECT count(*) AS n FROM unnest($5::bigint[]) AS r(at) WHERE r.at <= $1
), k AS MATERIALIZED (
    SELECT coalesce(sum(c.n) FILTER (WHERE c.state = {WAITING}), 0)::bigint AS waiting,
           coalesce(sum(c.n) FILTER (WHERE c.state = {RUNNING}), 0)::bigint AS running
    FROM runyard.counts c
), f AS MATERIALIZED (
    SELECT CASE WHEN d.n > 0 THEN runyard.keyless_tags(d.n, CASE
        WHEN k.waiting > 256 THEN runyard.frontier()
        ELSE coalesce(
            (SELECT u.tag FROM (SELECT v.priority, v.tag, v.id FROM runyard.jobs v
                                WHERE v.state = {WAITING} ORDER BY v.id DESC LIMIT k.waiting) u
             WHERE u.tag IS NOT NULL ORDER BY u.priority DESC, u.tag, u.id LIMIT 1),
            (SELECT setval('runyard.tag_next', g.v + 1) - 1 FROM (SELECT GREATEST(
                 (SELECT max(t.last) + 1 FROM runyard.key_tags t),
                 CASE WHEN k.running = 0 THEN NULL
                      WHEN k.running <= 256 THEN
                          (SELECT max(u.tag) + 1 FROM (SELECT v.tag FROM runyard.jobs v
                                                       WHERE v.state = {RUNNING}
                                                       ORDER BY v.id DESC LIMIT k.running) u)
                      ELSE (SELECT max(r.tag) + 1 FROM runyard.jobs r WHERE r.state = {RUNNING}) END,
                 (SELECT s.last_value FROM runyard.tag_next s)) AS v) g))
        END) END AS v
    FROM d, k
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
