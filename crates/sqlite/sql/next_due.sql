-- The earliest run-at of the waiting jobs: one with a tag is due (its run-at
-- is not ahead), so any of them stands for the due ones.
SELECT MIN(t) FROM (
    SELECT run_at AS t FROM (SELECT run_at FROM runyard_jobs WHERE state = {WAITING} AND tag IS NOT NULL LIMIT 1)
    UNION ALL
    SELECT MIN(run_at) FROM runyard_jobs WHERE state = {WAITING} AND tag IS NULL
)
