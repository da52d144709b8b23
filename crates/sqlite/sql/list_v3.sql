-- As list.sql, for a file of schema 3 or older read as it is (its jobs
-- have no workflow columns): jobs with ids above ?1, at most ?5, by id,
-- only those of task ?4 unless it is NULL, and only those in state ?2 at
-- time ?3 unless it is NULL.
SELECT id, task, params, state, run_at, enqueued_at, output, started
FROM runyard_jobs
WHERE id > ?1
  AND (?4 IS NULL OR task = ?4)
  AND (?2 IS NULL OR ?2 = CASE
        WHEN state = {WAITING} AND run_at > ?3 THEN 'scheduled'
        WHEN state = {WAITING} THEN 'queued'
        WHEN state = {RUNNING} AND NOT started THEN 'queued'
        WHEN state = {RUNNING} THEN 'running'
        WHEN state = {SUCCEEDED} THEN 'succeeded'
        WHEN state = {DEAD} THEN 'dead'
        ELSE 'cancelled'
      END)
ORDER BY id
LIMIT ?5
