-- Job ?1's state code and the first blocked job after it (NULL for none).
SELECT j.state,
       (SELECT e.child FROM runyard_edges e JOIN runyard_jobs c ON c.id = e.child
        WHERE e.parent = j.id AND c.state = {BLOCKED} ORDER BY e.child LIMIT 1)
FROM runyard_jobs j WHERE j.id = ?1
