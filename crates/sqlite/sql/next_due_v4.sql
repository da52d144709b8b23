-- The earliest run-at of the waiting jobs (a file of schema 4 or older, read as it is).
SELECT MIN(run_at) FROM runyard_jobs WHERE state = {WAITING}
