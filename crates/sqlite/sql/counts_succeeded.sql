-- Counts the successes just recorded of the jobs in the JSON array ?1
-- (each running until then): for each of their tasks, that many more
-- succeeded and that many fewer running (counts.rs).
INSERT INTO runyard_counts (task, state, n)
SELECT task, s, d FROM (
    SELECT task, {SUCCEEDED} AS s, COUNT(*) AS d FROM runyard_jobs
    WHERE id IN (SELECT value FROM json_each(?1)) GROUP BY task
    UNION ALL
    SELECT task, {RUNNING}, -COUNT(*) FROM runyard_jobs
    WHERE id IN (SELECT value FROM json_each(?1)) GROUP BY task
) WHERE true
ON CONFLICT (task, state) DO UPDATE SET n = n + excluded.n
