-- The jobs holding unique keys $1: waiting (unclaimed) or blocked, locked,
-- by key and id (a key's holder is its first).
SELECT unique_key, id FROM runyard.jobs
WHERE unique_key = ANY($1) AND finished_at IS NULL AND state IN ({WAITING}, {BLOCKED})
ORDER BY id FOR UPDATE
