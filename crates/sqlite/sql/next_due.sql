-- The earliest run-at of the waiting jobs.
SELECT MIN(run_at) FROM runyard_jobs WHERE state = {WAITING}
