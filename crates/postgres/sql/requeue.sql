-- Puts job $3, whose attempt was lost, in state $1 (waiting or dead) at $2.
-- Returns the job a failure names as the cause, and whether it has children.
UPDATE runyard.jobs SET state = $1, run_at = $2, worker = NULL, lease_until = NULL,
finished_at = CASE WHEN $1::smallint = {WAITING} THEN NULL ELSE $2::bigint END WHERE id = $3
RETURNING COALESCE(cause, id), children
