-- Job ?1's state and run-at.
SELECT state, run_at FROM runyard_jobs WHERE id = ?1
