-- The parents of the jobs whose ids are in the JSON array ?1, by job and
-- edge order: child, parent.
SELECT child, parent FROM runyard_edges
WHERE child IN (SELECT value FROM json_each(?1)) ORDER BY child, pos
