-- Job ?1's state code and run-at.
SELECT state, run_at FROM runyard_jobs WHERE id = ?1
