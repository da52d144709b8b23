-- The jobs after job ?1, by id, each with its number of edges to it, its
-- state code, run_if, cause and pending parents.
SELECT e.child, COUNT(*), j.state, j.run_if, j.cause, j.pending
FROM runyard_edges e JOIN runyard_jobs j ON j.id = e.child
WHERE e.parent = ?1
GROUP BY e.child
ORDER BY e.child
