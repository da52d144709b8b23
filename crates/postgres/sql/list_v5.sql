-- As list.sql, for a schema of version 4 or 5 (read as it is when
-- inspected), whose jobs have no schedule: jobs with ids above $1, at most
-- $5 (all when NULL), by id: only those of task $4 unless it is NULL, and
-- only those in state $2 (a state's name) at time $3 unless it is NULL. A
-- claim that has not started is queued, as counts_by_task.sql counts it.
-- The filters $6 to $11 are those of list.sql.
-- With each, its name, run_if, and the id and name of the job whose end
-- cancelled it.
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started, j.name,
       j.run_if, j.cause, (SELECT c.name FROM runyard.jobs c WHERE c.id = j.cause)
FROM runyard.jobs j
WHERE id > $1
  AND ($4::text IS NULL OR j.task = $4)
  AND ($2::text IS NULL
       OR $2 = 'queued' AND (state = {WAITING} AND run_at <= $3 OR state = {RUNNING} AND NOT started)
       OR $2 = 'scheduled' AND state = {WAITING} AND run_at > $3
       OR $2 = 'blocked' AND state = {BLOCKED}
       OR $2 = 'running' AND state = {RUNNING} AND started
       OR $2 = 'succeeded' AND state = {SUCCEEDED}
       OR $2 = 'dead' AND state = {DEAD}
       OR $2 = 'cancelled' AND state = {CANCELLED})
  AND ($6::text IS NULL OR j.unique_key = $6
       OR j.ckey_name = $7::text AND j.ckey_value = $8::text
       OR j.rkey_name = $7 AND j.rkey_value = $8)
  AND ($9::text IS NULL OR strpos(lower(j.params), $9) > 0
       OR EXISTS (SELECT 1 FROM runyard.attempts a
                  WHERE a.job = j.id AND strpos(lower(a.error), $9) > 0))
  AND ($10::bigint IS NULL OR j.enqueued_at >= $10)
  AND ($11::bigint IS NULL OR j.enqueued_at < $11)
ORDER BY id LIMIT $5
