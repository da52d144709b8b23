-- Cancels job ?1 (it is waiting or blocked).
UPDATE runyard_jobs SET state = {CANCELLED} WHERE id = ?1 AND state IN ({WAITING}, {BLOCKED})
