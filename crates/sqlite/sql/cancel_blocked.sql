-- Cancels blocked job ?1 at ?3 (a finished job's run-at is when it
-- ended), naming job ?2 as the cause.
UPDATE runyard_jobs SET state = {CANCELLED}, cause = ?2, run_at = ?3 WHERE id = ?1 AND state = {BLOCKED}
