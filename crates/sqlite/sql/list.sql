-- Jobs with ids above ?1, at most ?5, by id: only those of task ?4 unless
-- it is NULL, and only those in state ?2 (a state's name) at time ?3 unless
-- it is NULL. A claim that has not started is queued, as counts.sql
-- counts it. Each with its name, run_if, number of parents, and the cause
-- of its cancellation with that job's name, and the schedule and tick that
-- made it.
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started,
       j.name, j.run_if, j.parents, j.cause, c.name, j.schedule, j.tick
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
