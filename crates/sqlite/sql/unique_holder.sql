-- The holder of unique key ?1: the first job with it that waits or is blocked.
SELECT id, state, tag FROM runyard_jobs
WHERE unique_key = ?1 AND state IN ({WAITING}, {BLOCKED}) ORDER BY id LIMIT 1
