-- The attempts of jobs $1 (for a page whose ids are far apart: a filtered
-- list), by job and number.
SELECT job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail
FROM runyard.attempts WHERE job = ANY($1) ORDER BY job, n
