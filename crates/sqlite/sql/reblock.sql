-- Gives job ?1, cancelled by the end of a job now retried, its blocked
-- state back with ?2 pending parents; at none it is waiting from ?3 (or
-- its own later run-at), without a tag until it is given one.
UPDATE runyard_jobs
SET cause = NULL, pending = ?2, tag = NULL,
    state = CASE WHEN ?2 = 0 THEN {WAITING} ELSE {BLOCKED} END,
    run_at = CASE WHEN ?2 = 0 THEN MAX(run_at, ?3) ELSE run_at END
WHERE id = ?1 AND state = {CANCELLED}
