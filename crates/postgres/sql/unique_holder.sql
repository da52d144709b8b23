-- The job holding unique key $1: waiting (unclaimed) or blocked, locked.
SELECT id FROM runyard.jobs
WHERE unique_key = $1 AND finished_at IS NULL AND state IN ({WAITING}, {BLOCKED})
ORDER BY id LIMIT 1 FOR UPDATE
