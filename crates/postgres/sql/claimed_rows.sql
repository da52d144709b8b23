-- Jobs $1 as claim.sql returns them, once claim_limited.sql has claimed
-- them.
SELECT j.id, j.attempt, j.task, j.params, j.max_attempts, j.backoff, j.timeout_us, j.priority,
       j.mode, j.isolate, j.run_at, j.claims,
       EXISTS (SELECT 1 FROM runyard.edges e WHERE e.child = j.id), j.tag, j.schedule, j.tick
FROM runyard.jobs j WHERE j.id = ANY($1)
