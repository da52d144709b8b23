-- As list.sql, for a schema older than version 4 (read as it is when
-- inspected), which has no workflows: jobs with ids above $1, at most $5
-- (all when NULL), by id: only those of task $4 unless it is NULL, and
-- only those in state $2 (a state's name) at time $3 unless it is NULL. A
-- claim that has not started is queued, as counts_by_task.sql counts it.
SELECT id, task, params, state, run_at, enqueued_at, output, started FROM runyard.jobs
WHERE id > $1
  AND ($4::text IS NULL OR task = $4)
  AND ($2::text IS NULL OR $2 = CASE
        WHEN state = {WAITING} AND run_at > $3 THEN 'scheduled'
        WHEN state = {WAITING} THEN 'queued'
        WHEN state = {RUNNING} AND NOT started THEN 'queued'
        WHEN state = {RUNNING} THEN 'running'
        WHEN state = {SUCCEEDED} THEN 'succeeded'
        WHEN state = {DEAD} THEN 'dead'
        ELSE 'cancelled'
      END)
ORDER BY id LIMIT $5
