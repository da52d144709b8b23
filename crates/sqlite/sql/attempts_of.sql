-- The attempts of the jobs whose ids are in the JSON array ?1, by job and
-- number (for a page whose ids are far apart: a filtered list).
SELECT job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail
FROM runyard_attempts WHERE job IN (SELECT value FROM json_each(?1)) ORDER BY job, n
