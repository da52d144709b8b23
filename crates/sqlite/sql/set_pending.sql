-- Job ?1, blocked again, has ?2 pending parents; at none it is waiting
-- from ?3 (or its own later run-at).
UPDATE runyard_jobs
SET pending = ?2,
    state = CASE WHEN ?2 = 0 THEN {WAITING} ELSE state END,
    run_at = CASE WHEN ?2 = 0 THEN MAX(run_at, ?3) ELSE run_at END
WHERE id = ?1 AND state = {BLOCKED}
