-- Extends worker $1's leases (jobs $3[i], attempts $4[i], claims $5[i]) until $2. Returns
-- the leases still held, whether someone asked to cancel each, and whether
-- it is an unstarted claim of a paused task. (On the
-- subquery, see started.sql.)
UPDATE runyard.jobs j
SET lease_until = $2
FROM (SELECT l.*, {RUNNING}::smallint AS running, $1::text AS holder
      FROM unnest($3::bigint[], $4::integer[], $5::bigint[]) AS l(id, attempt, claim) OFFSET 0) l
WHERE j.id = ANY($3) AND j.id = l.id AND j.attempt = l.attempt AND j.claims = l.claim AND j.state = l.running AND j.worker = l.holder
RETURNING l.id, l.attempt, l.claim, j.cancel_requested,
          NOT j.started AND EXISTS (SELECT 1 FROM runyard.paused p WHERE p.task IN (j.task, ''))
