-- What retrying job ?1 needs: its state code, run_if, and numbers of edges
-- to its parents and to jobs after it.
SELECT state, run_if, parents, children FROM runyard_jobs WHERE id = ?1
