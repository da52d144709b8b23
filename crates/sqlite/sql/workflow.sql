-- The jobs linked to job ?1 by edges, either way, transitively, itself
-- included, by id (none when there is no job ?1).
WITH RECURSIVE w(id) AS (
    SELECT id FROM runyard_jobs WHERE id = ?1
    UNION
    SELECT e.parent FROM runyard_edges e JOIN w ON e.child = w.id
    UNION
    SELECT e.child FROM runyard_edges e JOIN w ON e.parent = w.id
)
SELECT id FROM w ORDER BY id
