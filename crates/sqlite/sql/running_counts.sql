-- The running jobs (claimed, started or not) by task and concurrency key.
SELECT task, concurrency_key, COUNT(*) FROM runyard_jobs
WHERE state = {RUNNING} GROUP BY task, concurrency_key
