-- When the oldest job ready at $1 became ready.
SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND run_at <= $1
