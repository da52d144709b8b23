-- Marks worker $1's claimed attempts (jobs $2[i], attempts $3[i]) as started at $4[i].
UPDATE runyard.jobs j
SET started = true, claimed_at = s.at
FROM unnest($2::bigint[], $3::integer[], $4::bigint[]) AS s(id, attempt, at)
WHERE j.id = s.id AND j.attempt = s.attempt AND j.state = 2 AND j.worker = $1
