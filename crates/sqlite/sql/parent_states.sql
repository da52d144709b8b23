-- The parents of job ?1 in edge order: id, state code and cause.
SELECT p.id, p.state, p.cause
FROM runyard_edges e JOIN runyard_jobs p ON p.id = e.parent
WHERE e.child = ?1
ORDER BY e.pos
