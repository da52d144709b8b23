-- Adds jobs given as parallel arrays, in order; a job whose idempotency key
-- is taken is skipped. Due jobs are the keyless fairness group's next
-- tags in batch order (runyard.keyless_tags: after the group's last tag,
-- never below the frontier; a skipped job leaves a gap). The frontier is
-- read only when some job is due: read while nothing waits, it counts as a
-- tag given (runyard.frontier), and a batch of jobs not yet due gives none.
-- Returns the added jobs.
--
-- The frontier is runyard.frontier()'s, read here as that function does
-- when at most 256 jobs wait (by the kept counts of migration 0009, which
-- agree with the jobs in the statement's snapshot): from the newest end of
-- the state index rather than from the heads of the fair order's index
-- and of the running jobs' lease index. Right after a deep drain those
-- heads are long runs of entries of jobs that have moved on, which each
-- read would walk until vacuum removes them: the function's max over the
-- running jobs is a bitmap scan, which never marks such entries dead, so
-- it read every one of them again, with their heap pages, on every insert
-- into an idle queue (about 0.3 s with 10^6 jobs drained). The function
-- itself is left as it is for its other callers.
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
