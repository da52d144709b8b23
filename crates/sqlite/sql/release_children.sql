-- Job ?1 succeeded at ?2: each blocked job after it counts its edges to it
-- as ended, and at none pending left is waiting from ?2 (or its own later
-- run-at). Returns each one's id and new state code.
UPDATE runyard_jobs AS j
SET pending = MAX(j.pending - e.n, 0),
    state = CASE WHEN j.pending - e.n <= 0 THEN {WAITING} ELSE j.state END,
    run_at = CASE WHEN j.pending - e.n <= 0 THEN MAX(j.run_at, ?2) ELSE j.run_at END
FROM (SELECT child, COUNT(*) AS n FROM runyard_edges WHERE parent = ?1 GROUP BY child) AS e
WHERE j.id = e.child AND j.state = {BLOCKED}
RETURNING id, state
