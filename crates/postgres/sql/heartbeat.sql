-- Extends worker $1's leases (jobs $3[i], attempts $4[i]) until $2. Returns
-- the leases still held, and whether someone asked to cancel each.
UPDATE runyard.jobs j
SET lease_until = $2
FROM unnest($3::bigint[], $4::integer[]) AS l(id, attempt)
WHERE j.id = l.id AND j.attempt = l.attempt AND j.state = 2 AND j.worker = $1
RETURNING l.id, l.attempt, j.cancel_requested
