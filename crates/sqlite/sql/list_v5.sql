-- As list.sql, for a file of schema 4 or 5 read as it is (its jobs have
-- no schedule columns): jobs with ids above ?1, at most ?5, by id, only
-- those of task ?4 unless it is NULL, and only those in state ?2 at time
-- ?3 unless it is NULL; each with its name, run_if, number of parents, and
-- the cause of its cancellation with that job's name.
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started,
       j.name, j.run_if, j.parents, j.cause, c.name
FROM runyard_jobs j LEFT JOIN runyard_jobs c ON c.id = j.cause
WHERE j.id > ?1
  AND (?4 IS NULL OR j.task = ?4)
  AND (?2 IS NULL OR ?2 = CASE
        WHEN j.state = {WAITING} AND j.run_at > ?3 THEN 'scheduled'
        WHEN j.state = {WAITING} THEN 'queued'
        WHEN j.state = {RUNNING} AND NOT j.started THEN 'queued'
        WHEN j.state = {RUNNING} THEN 'running'
        WHEN j.state = {BLOCKED} THEN 'blocked'
        WHEN j.state = {SUCCEEDED} THEN 'succeeded'
        WHEN j.state = {DEAD} THEN 'dead'
        ELSE 'cancelled'
      END)
ORDER BY j.id
LIMIT ?5
