-- The jobs $1, locked against ending until the transaction ends (see
-- src/flow.rs): state code and the job a failure names (its own cause, or
-- itself).
SELECT id, state, COALESCE(cause, id) FROM runyard.jobs WHERE id = ANY($1) ORDER BY id FOR SHARE
