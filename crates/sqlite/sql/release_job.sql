-- Blocked job ?1 has no pending parents left: it is waiting from ?2 (or
-- its own later run-at), without a tag until the first claim once it is due.
UPDATE runyard_jobs SET state = {WAITING}, pending = 0, run_at = MAX(run_at, ?2), tag = NULL
WHERE id = ?1 AND state = {BLOCKED}
