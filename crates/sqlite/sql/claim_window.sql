-- The first ?2 due jobs in claim order at time ?1 (only of the tasks in the
-- JSON array ?3, when given), with the limits they carry.
SELECT id, task, concurrency_key, key_concurrency, rate_key, key_rate, task_concurrency, task_rate
FROM runyard_jobs
WHERE state = {WAITING} AND tag IS NOT NULL AND run_at <= ?1
    AND (?3 IS NULL OR task IN (SELECT value FROM json_each(?3)))
ORDER BY priority DESC, tag, id
LIMIT ?2
