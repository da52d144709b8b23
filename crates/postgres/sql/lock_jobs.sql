-- The jobs $1, locked: state code and run-at.
SELECT id, state, run_at FROM runyard.jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE
