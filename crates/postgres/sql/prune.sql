-- Deletes jobs in the states $1 that finished before $2, with ids from $3 to
-- $3 + $4 (one range per transaction), and their attempts; returns how many.
WITH gone AS (
DELETE FROM runyard.jobs
WHERE id >= $3 AND id < $3 + $4 AND state = ANY($1) AND finished_at < $2
RETURNING id
), attempts AS (
DELETE FROM runyard.attempts WHERE job IN (SELECT id FROM gone)
)
SELECT COUNT(*) FROM gone
