-- Counts ?2 of blocked job ?1's pending parents as ended; at none left it
-- is waiting from ?3 (or its own later run-at). Returns its state code.
UPDATE runyard_jobs
SET pending = MAX(pending - ?2, 0),
    state = CASE WHEN pending - ?2 <= 0 THEN {WAITING} ELSE state END,
    run_at = CASE WHEN pending - ?2 <= 0 THEN MAX(run_at, ?3) ELSE run_at END
WHERE id = ?1 AND state = {BLOCKED}
RETURNING state
