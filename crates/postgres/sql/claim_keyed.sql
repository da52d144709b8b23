-- The limited claim in one statement, for the common case: the set-based
-- path of claim_limited (migration 0007) when no limit is stored, no
-- task is paused, no due job waits for its tag, and every job of the
-- window carries at most a concurrency key (no task limit, no rate) whose
-- counter exists. Otherwise it claims nothing and its last column says so
-- (false), and the claim is claim_limited.sql's. Worker $1, lease until
-- $2, at $3, at most $4 jobs of the tasks $5 (all when NULL), over a
-- window of $6 jobs, the database's clock when $7.
--
-- As in the function, with the counters read once: the window is joined
-- to its keys' counters (read without a lock); the jobs those counts
-- would give (each key's first jobs up to its free slots, in fair order,
-- the first $4) name the counters that are locked, skipping those another
-- claim holds (a locked row is re-read as it now is); each key then gives
-- its first jobs up to its free slots by the locked count; those rows
-- are locked (skipping those another claim holds or took), claimed, and
-- their counters moved on by the jobs claimed. Returns the jobs as
-- claimed_rows.sql does, then whether this path applied; one row of NULL
-- job columns when it claimed nothing.
WITH gate AS MATERIALIZED (
    SELECT NOT EXISTS (SELECT 1 FROM runyard.limits)
       AND NOT EXISTS (SELECT 1 FROM runyard.paused)
       AND NOT EXISTS (SELECT 1 FROM runyard.jobs u
                       WHERE u.state = {WAITING} AND u.tag IS NULL
                         AND u.run_at <= CASE WHEN $7::boolean
                             THEN (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                             ELSE $3::bigint END) AS ok
), w AS MATERIALIZED (
    -- The window in fair order, each job with its key's counter as read
    -- without a lock (NULL, and `bare`, when the key has none).
    SELECT c.id, c.ord, c.tgt, c.lim, c.care, x.n AS n0,
           (c.tgt IS NOT NULL AND x.target IS NULL) AS bare
    FROM (SELECT c.id, row_number() OVER (ORDER BY c.priority DESC, c.tag, c.id) AS ord,
                 CASE WHEN c.ckey_name IS NOT NULL THEN 'k:' || c.ckey_name || ':' || c.ckey_value END AS tgt,
                 c.ckey_conc AS lim,
                 (c.task_conc IS NOT NULL OR c.task_rate_n IS NOT NULL OR c.rkey_name IS NOT NULL) AS care
          FROM (SELECT c.id, c.priority, c.tag, c.ckey_name, c.ckey_value, c.ckey_conc, c.task_conc,
                       c.task_rate_n, c.rkey_name
                FROM runyard.jobs c
                WHERE (SELECT ok FROM gate) AND c.state = {WAITING} AND c.tag IS NOT NULL
                  AND ($5::text[] IS NULL OR c.task = ANY($5))
                ORDER BY c.priority DESC, c.tag, c.id
                LIMIT $6::integer) c) c
    LEFT JOIN runyard.running x ON x.target = c.tgt
), path AS MATERIALIZED (
    SELECT (SELECT ok FROM gate) AND NOT EXISTS (SELECT 1 FROM w WHERE w.care OR w.bare) AS fast
), cand AS MATERIALIZED (
    -- The jobs the claim would take by the counters read without a lock:
    -- each key's first jobs up to its free slots, the first $4 of them.
    SELECT s.id, s.ord, s.tgt, s.lim FROM (
        SELECT w.id, w.ord, w.tgt, w.lim, w.n0,
               row_number() OVER (PARTITION BY w.tgt ORDER BY w.ord) AS rk
        FROM w WHERE (SELECT fast FROM path)
    ) s
    WHERE s.tgt IS NULL OR s.lim IS NULL OR s.rk <= s.lim - coalesce(s.n0, 0)
    ORDER BY s.ord
    LIMIT $4::integer
), k AS MATERIALIZED (
    -- Their keys' counters, locked (skipping those another claim holds)
    -- and read as they now are.
    SELECT x.target, x.n
    FROM runyard.running x
    WHERE x.target = ANY(ARRAY(SELECT DISTINCT cand.tgt FROM cand WHERE cand.tgt IS NOT NULL))
    ORDER BY x.target
    FOR UPDATE OF x SKIP LOCKED
), pick AS MATERIALIZED (
    -- Each locked counter heads its key's jobs (at place 0), so that one
    -- sort gives every job its key's running count and its rank among the
    -- key's jobs, with no join (whose plan would rest on estimates of the
    -- window's rows).
    SELECT s.id FROM (
        SELECT u.id, u.ord, u.tgt, u.lim, first_value(u.n) OVER p AS n,
               first_value(u.id IS NULL) OVER p AS locked, row_number() OVER p - 1 AS rk
        FROM (SELECT cand.id, cand.ord, cand.tgt, cand.lim, NULL::integer AS n FROM cand
              UNION ALL
              SELECT NULL::bigint, 0::bigint, k.target, NULL::integer, k.n FROM k) u
        WINDOW p AS (PARTITION BY u.tgt ORDER BY u.ord)
    ) s
    WHERE s.id IS NOT NULL
      AND (s.tgt IS NULL OR (s.locked AND (s.lim IS NULL OR s.rk <= s.lim - s.n)))
    ORDER BY s.ord
), locked AS MATERIALIZED (
    -- (The state test is a CASE so that the rows are found by primary
    -- key, not by a scan of the fair order's index.)
    SELECT j.id FROM runyard.jobs j
    WHERE j.id = ANY(ARRAY(SELECT id FROM pick))
      AND CASE WHEN j.state = {WAITING} THEN j.tag IS NOT NULL ELSE false END
    ORDER BY j.id
    FOR UPDATE OF j SKIP LOCKED
), claimed AS (
    UPDATE runyard.jobs j
    SET state = {RUNNING}, attempt = j.attempt + 1, claims = j.claims + 1, worker = $1,
        lease_until = $2, claimed_at = $3, started = false,
        held = CASE WHEN j.ckey_name IS NOT NULL
                    THEN ARRAY['k:' || j.ckey_name || ':' || j.ckey_value]
                    ELSE ARRAY[]::text[] END,
        admitted_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT id FROM locked))
    RETURNING j.id, j.attempt, j.task, j.params, j.max_attempts, j.backoff, j.timeout_us,
              j.priority, j.mode, j.isolate, j.run_at, j.claims,
              EXISTS (SELECT 1 FROM runyard.edges e WHERE e.child = j.id) AS linked, j.tag, j.schedule,
              j.tick, j.ckey_conc IS NOT NULL AS slotted, j.held[1] AS tgt
), bump AS (
    UPDATE runyard.running x SET n = x.n + g.c
    FROM (SELECT c.tgt, count(*)::integer AS c FROM claimed c WHERE c.tgt IS NOT NULL
          GROUP BY c.tgt) g
    WHERE x.target = g.tgt
)
SELECT c.id, c.attempt, c.task, c.params, c.max_attempts, c.backoff, c.timeout_us, c.priority,
       c.mode, c.isolate, c.run_at, c.claims, c.linked, c.tag, c.schedule, c.tick, c.slotted,
       p.fast
FROM path p LEFT JOIN claimed c ON true
