-- Deletes jobs in the states $1 that finished before $2, with ids from $3 to
-- $3 + $4 (one range per transaction), and their attempts and the edges to
-- their parents; returns how many. A job that an unfinished job is after
-- stays: its output is still to be read.
WITH gone AS (
DELETE FROM runyard.jobs
WHERE id >= $3 AND id < $3 + $4 AND state = ANY($1) AND finished_at < $2
  AND NOT (children AND EXISTS (
      SELECT 1 FROM runyard.edges e JOIN runyard.jobs c ON c.id = e.child
      WHERE e.parent = runyard.jobs.id AND c.state IN ({WAITING}, {BLOCKED}, {RUNNING})))
RETURNING id
), attempts AS (
DELETE FROM runyard.attempts WHERE job IN (SELECT id FROM gone)
), edges AS (
DELETE FROM runyard.edges WHERE child IN (SELECT id FROM gone)
)
SELECT COUNT(*) FROM gone
