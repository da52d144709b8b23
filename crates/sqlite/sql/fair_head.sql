-- The tag at the head of the claim order (the frontier, when a job waits).
SELECT tag FROM runyard_jobs WHERE state = {WAITING} AND tag IS NOT NULL
ORDER BY priority DESC, tag, id LIMIT 1
