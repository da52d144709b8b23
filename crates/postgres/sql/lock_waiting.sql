-- Those of jobs $1 that wait or are blocked, locked in id order: id, state
-- code, run_if.
SELECT id, state, run_if FROM runyard.jobs WHERE id = ANY($1) AND state IN ({WAITING}, {BLOCKED})
ORDER BY id FOR UPDATE
