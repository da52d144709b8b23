-- The edges of job ?1 in order, each with its parent's stored output: what
-- its parents object is built from.
SELECT e.key, e.many, p.output
FROM runyard_edges e JOIN runyard_jobs p ON p.id = e.parent
WHERE e.child = ?1
ORDER BY e.pos
