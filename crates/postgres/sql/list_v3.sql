-- As list.sql, for a schema older than version 4 (read as it is when
-- inspected), which has no workflows: jobs with ids above $1, at most $5
-- (all when NULL), by id: only those of task $4 unless it is NULL, and
-- only those in state $2 (a state's name) at time $3 unless it is NULL. A
-- claim that has not started is queued, as counts_by_task.sql counts it.
-- The filters $6 to $11 are those of list.sql (no job here has a key).
SELECT id, task, params, state, run_at, enqueued_at, output, started FROM runyard.jobs j
WHERE id > $1
  AND ($4::text IS NULL OR task = $4)
  AND ($2::text IS NULL
       OR $2 = 'queued' AND (state = {WAITING} AND run_at <= $3 OR state = {RUNNING} AND NOT started)
       OR $2 = 'scheduled' AND state = {WAITING} AND run_at > $3
       OR $2 = 'blocked' AND state = {BLOCKED}
       OR $2 = 'running' AND state = {RUNNING} AND started
       OR $2 = 'succeeded' AND state = {SUCCEEDED}
       OR $2 = 'dead' AND state = {DEAD}
       OR $2 = 'cancelled' AND state = {CANCELLED})
  AND ($6::text IS NULL OR $7::text IS NULL AND $8::text IS NULL AND false)
  AND ($9::text IS NULL OR strpos(lower(j.params), $9) > 0
       OR EXISTS (SELECT 1 FROM runyard.attempts a
                  WHERE a.job = j.id AND strpos(lower(a.error), $9) > 0))
  AND ($10::bigint IS NULL OR j.enqueued_at >= $10)
  AND ($11::bigint IS NULL OR j.enqueued_at < $11)
ORDER BY id LIMIT $5
