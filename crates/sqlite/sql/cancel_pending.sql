-- Cancels every waiting and blocked job at ?1 (a finished job's run-at is
-- when it ended); returns their ids. Nothing is
-- left to settle: every job that could still move on (a blocked one) is
-- among them.
UPDATE runyard_jobs SET state = {CANCELLED}, run_at = ?1 WHERE state IN ({WAITING}, {BLOCKED}) RETURNING id
