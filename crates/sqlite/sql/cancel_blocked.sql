-- Cancels blocked job ?1, naming job ?2 as the cause.
UPDATE runyard_jobs SET state = {CANCELLED}, cause = ?2 WHERE id = ?1 AND state = {BLOCKED}
