-- The latest job with unique key ?1 that succeeded at ?2 or later (a
-- succeeded job's run-at is its end).
SELECT id FROM runyard_jobs
WHERE unique_key = ?1 AND state = {SUCCEEDED} AND run_at >= ?2
ORDER BY run_at DESC, id DESC LIMIT 1
