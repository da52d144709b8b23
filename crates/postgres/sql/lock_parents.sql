-- Marks the jobs $1 (sorted, so that locks are taken in id order) as having
-- children, which locks their rows until the transaction ends: a parent
-- ending at the same moment either ended first (its state is returned) or
-- waits and then sees the new edges (see src/flow.rs). Returns each job's
-- state code and the job its failure names as the cause (its own cause,
-- or itself).
UPDATE runyard.jobs SET children = true WHERE id = ANY($1)
RETURNING id, state, COALESCE(cause, id)
