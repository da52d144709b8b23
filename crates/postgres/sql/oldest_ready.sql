-- When the oldest job ready at $1 became ready.
SELECT LEAST(
    (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NULL AND run_at <= $1),
    (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NOT NULL))
