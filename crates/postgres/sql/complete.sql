-- Ends attempts held by worker $1: per attempt, job $2[i], attempt $3[i],
-- claim $15[i], new state $4[i], run-at $5[i], output $6[i]; at time $7. A job changes
-- only while that attempt still holds its lease (fencing), and only then is
-- its attempt record (the remaining arrays) written. Returns the ended
-- jobs: id, claim, state, the job its failure names as the cause, and
-- whether it has children. A job with children is ended only when $16 is
-- true, in the transaction that then settles them (see src/flow.rs); the
-- flag is re-read under the row's lock, so an edge added at the same
-- moment is never missed. The concurrency slots the claims held are given
-- back; a retry due now takes the frontier as its tag, one due later none
-- until a claim after its run-at. (On the subquery, see started.sql.)
WITH done AS (
    SELECT d.*, {RUNNING}::smallint AS running, $1::text AS holder
    FROM unnest($2::bigint[], $3::integer[], $4::smallint[], $5::bigint[], $6::text[], $15::bigint[])
        AS d(id, attempt, state, run_at, output, claim)
    OFFSET 0
), ended AS (
    UPDATE runyard.jobs j
    SET state = done.state, run_at = done.run_at, output = done.output, worker = NULL,
        lease_until = NULL, cancel_requested = false,
        tag = CASE WHEN done.state = {WAITING} AND done.run_at <= $7::bigint
                   THEN {FRONTIER} END,
        finished_at = CASE WHEN done.state = {WAITING} THEN NULL ELSE $7::bigint END
    FROM done
    WHERE j.id = ANY($2) AND j.id = done.id AND j.attempt = done.attempt AND j.claims = done.claim
      AND j.state = done.running
      AND j.worker = done.holder
      AND ($16::boolean OR NOT j.children)
    RETURNING j.id, j.claims, j.state, COALESCE(j.cause, j.id) AS cause, j.children, j.held
), gone AS (
    -- The slots the ended claims held, counted per counter.
    SELECT h.t, count(*)::integer AS c FROM ended e, unnest(e.held) AS h(t)
    GROUP BY h.t ORDER BY h.t
), freed AS (
    -- Given back, each counter found by its key (in target order).
    UPDATE runyard.running r SET n = r.n - g.c FROM gone g WHERE r.target = g.t
), recorded AS (
    INSERT INTO runyard.attempts
        (job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail, worker)
    SELECT a.job, a.n, a.outcome, a.started_at, a.duration_us, a.queued_us, a.error, a.permanent,
           a.detail, $1
    FROM unnest($2::bigint[], $3::integer[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[],
                $12::text[], $13::boolean[], $14::text[], $15::bigint[])
        AS a(job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail, claim)
    WHERE (a.job, a.claim) IN (SELECT id, claims FROM ended)
)
SELECT id, claims, state, cause, children FROM ended
