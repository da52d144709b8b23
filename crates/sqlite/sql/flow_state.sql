-- Job ?1's state code and cause, for what its state means to a job after it.
SELECT state, cause FROM runyard_jobs WHERE id = ?1
