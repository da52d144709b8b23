-- What claimed jobs $1 see of their parents, by child and position: child,
-- key, many, the parent's output (NULL when it has none).
SELECT e.child, e.key, e.many, p.output
FROM runyard.edges e LEFT JOIN runyard.jobs p ON p.id = e.parent
WHERE e.child = ANY($1) ORDER BY e.child, e.position
