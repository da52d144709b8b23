-- As list.sql, for a schema of version 4 or 5 (read as it is when
-- inspected), whose jobs have no schedule: jobs with ids above $1, at most
-- $5 (all when NULL), by id: only those of task $4 unless it is NULL, and
-- only those in state $2 (a state's name) at time $3 unless it is NULL. A
-- claim that has not started is queued, as counts_by_task.sql counts it.
-- With each, its name, run_if, and the id and name of the job whose end
-- cancelled it.
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started, j.name,
       j.run_if, j.cause, (SELECT c.name FROM runyard.jobs c WHERE c.id = j.cause)
FROM runyard.jobs j
WHERE id > $1
  AND ($4::text IS NULL OR j.task = $4)
  AND ($2::text IS NULL OR $2 = CASE
        WHEN state = {WAITING} AND run_at > $3 THEN 'scheduled'
        WHEN state = {WAITING} THEN 'queued'
        WHEN state = {BLOCKED} THEN 'blocked'
        WHEN state = {RUNNING} AND NOT started THEN 'queued'
        WHEN state = {RUNNING} THEN 'running'
        WHEN state = {SUCCEEDED} THEN 'succeeded'
        WHEN state = {DEAD} THEN 'dead'
        ELSE 'cancelled'
      END)
ORDER BY id LIMIT $5
