-- Cancels every waiting and blocked job; returns their ids. Nothing is
-- left to settle: every job that could still move on (a blocked one) is
-- among them.
UPDATE runyard_jobs SET state = {CANCELLED} WHERE state IN ({WAITING}, {BLOCKED}) RETURNING id
