-- Cancels job $1 if it waits or is blocked, at $2. Returns the job it names
-- as the cause of its dependents' cancellation, and whether it has children.
UPDATE runyard.jobs SET state = {CANCELLED}, finished_at = $2
WHERE id = $1 AND state IN ({WAITING}, {BLOCKED})
RETURNING COALESCE(cause, id), children
