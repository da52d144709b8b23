-- Gives worker $1's unstarted claims (jobs $3[i], attempts $4[i]) back at
-- time $2: queued again, the claim not counted. Returns the released leases.
UPDATE runyard.jobs j
SET state = 0, attempt = j.attempt - 1, worker = NULL, lease_until = NULL, run_at = LEAST(j.run_at, $2)
FROM unnest($3::bigint[], $4::integer[]) AS l(id, attempt)
WHERE j.id = l.id AND j.attempt = l.attempt AND j.state = 2 AND j.worker = $1
RETURNING l.id, l.attempt
