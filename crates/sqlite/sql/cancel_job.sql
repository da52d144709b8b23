-- Cancels job ?1 (it is waiting or blocked) at ?2: a finished job's run-at
-- is when it ended.
UPDATE runyard_jobs SET state = {CANCELLED}, run_at = ?2 WHERE id = ?1 AND state IN ({WAITING}, {BLOCKED})
