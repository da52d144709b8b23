-- The attempts of the jobs with ids from ?1 to ?2, by job and number.
SELECT job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail
FROM runyard_attempts WHERE job BETWEEN ?1 AND ?2 ORDER BY job, n
