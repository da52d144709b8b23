-- The earliest run-at of the waiting jobs: of those without a tag, or of
-- any with one (a tagged job is due, so any of them is not after now).
SELECT LEAST(
    (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NULL),
    (SELECT run_at FROM runyard.jobs WHERE state = {WAITING} AND tag IS NOT NULL LIMIT 1))
