-- Gives worker $1's unstarted claims (jobs $3[i], attempts $4[i], claims
-- $5[i]) back at
-- time $2: queued again, the claim not counted. Returns the released
-- leases; the concurrency slots they held are given back. (On the subquery, see started.sql.)
WITH back AS (
UPDATE runyard.jobs j
SET state = {WAITING}, attempt = j.attempt - 1, worker = NULL, lease_until = NULL, run_at = LEAST(j.run_at, $2)
FROM (SELECT l.*, {RUNNING}::smallint AS running, $1::text AS holder
      FROM unnest($3::bigint[], $4::integer[], $5::bigint[]) AS l(id, attempt, claim) OFFSET 0) l
WHERE j.id = ANY($3) AND j.id = l.id AND j.attempt = l.attempt AND j.claims = l.claim AND j.state = l.running AND j.worker = l.holder
RETURNING l.id, l.attempt, l.claim, j.held
), gone AS (
    SELECT h.t, count(*)::integer AS c FROM back b, unnest(b.held) AS h(t)
    GROUP BY h.t ORDER BY h.t
), freed AS (
    UPDATE runyard.running r SET n = r.n - g.c FROM gone g WHERE r.target = g.t
)
SELECT id, attempt, claim FROM back
