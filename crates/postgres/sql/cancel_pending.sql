-- Cancels every waiting or blocked job at $1; returns their ids, the job
-- each names as the cause of its dependents' cancellation, and whether it
-- has children.
UPDATE runyard.jobs SET state = {CANCELLED}, finished_at = $1 WHERE state IN ({WAITING}, {BLOCKED})
RETURNING id, COALESCE(cause, id), children
