-- For each of jobs $1: its state code and the first blocked job after it
-- (NULL for none), to say why delete_jobs.sql left it.
SELECT j.id, j.state, j.run_at,
       (SELECT e.child FROM runyard.edges e JOIN runyard.jobs c ON c.id = e.child
        WHERE e.parent = j.id AND c.state = {BLOCKED} ORDER BY e.child LIMIT 1)
FROM runyard.jobs j WHERE j.id = ANY($1)
