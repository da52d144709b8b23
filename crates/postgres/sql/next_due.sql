-- The earliest run-at of the waiting jobs.
SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING}
