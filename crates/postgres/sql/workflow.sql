-- Every job linked to job $1 by edges, either way, with itself, by id
-- (nothing when it does not exist).
WITH RECURSIVE w(id) AS (
    SELECT id FROM runyard.jobs WHERE id = $1
    UNION
    SELECT n.id FROM w, LATERAL (
        SELECT child FROM runyard.edges WHERE parent = w.id
        UNION ALL
        SELECT parent FROM runyard.edges WHERE child = w.id
    ) AS n(id)
)
SELECT id FROM w ORDER BY id
