-- Marks worker $1's claimed attempts (jobs $2[i], attempts $3[i], claims
-- $5[i]) as started at $4[i].
-- (The rows are found by primary key from the id array, never by a scan:
-- the fencing values come from the subquery, which OFFSET 0 keeps apart,
-- so that no estimate of "running jobs" steers the plan, and `id = ANY`
-- bounds the rows to the batch whatever the size of the table.)
UPDATE runyard.jobs j
SET started = true, claimed_at = s.at
FROM (SELECT d.*, {RUNNING}::smallint AS running, $1::text AS holder
      FROM unnest($2::bigint[], $3::integer[], $4::bigint[], $5::bigint[]) AS d(id, attempt, at, claim) OFFSET 0) s
WHERE j.id = ANY($2) AND j.id = s.id AND j.attempt = s.attempt AND j.claims = s.claim AND j.state = s.running AND j.worker = s.holder
