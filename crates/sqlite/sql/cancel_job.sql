-- Cancels job ?1 (it is waiting).
UPDATE runyard_jobs SET state = {CANCELLED} WHERE id = ?1
