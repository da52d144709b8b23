-- Job ?1's state code, the first blocked job after it (NULL for none), and
-- its run-at (a waiting job's: queued or scheduled).
SELECT j.state,
       (SELECT e.child FROM runyard_edges e JOIN runyard_jobs c ON c.id = e.child
        WHERE e.parent = j.id AND c.state = {BLOCKED} ORDER BY e.child LIMIT 1),
       j.run_at
FROM runyard_jobs j WHERE j.id = ?1
