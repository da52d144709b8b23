-- Blocked job ?1 has no pending parents left: it is waiting from ?2 (or
-- its own later run-at).
UPDATE runyard_jobs SET state = {WAITING}, pending = 0, run_at = MAX(run_at, ?2)
WHERE id = ?1 AND state = {BLOCKED}
