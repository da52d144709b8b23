-- The running jobs (claimed, started or not) by task and concurrency key,
-- counted from the rows themselves: exact in every transaction.
SELECT task, concurrency_key, COUNT(*) FROM runyard_jobs INDEXED BY runyard_jobs_leases
WHERE state = {RUNNING} GROUP BY task, concurrency_key
