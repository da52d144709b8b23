-- Every due waiting job at time ?1 in claim order (those not yet given a
-- tag after the others of their priority), with the limits they carry.
SELECT id, task, concurrency_key, key_concurrency, rate_key, key_rate, task_concurrency, task_rate
FROM runyard_jobs
WHERE state = {WAITING} AND run_at <= ?1
ORDER BY priority DESC, tag IS NULL, tag, id
