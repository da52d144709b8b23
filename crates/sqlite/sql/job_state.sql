-- Job ?1's state code, run-at and number of edges to jobs after it.
SELECT state, run_at, children FROM runyard_jobs WHERE id = ?1
