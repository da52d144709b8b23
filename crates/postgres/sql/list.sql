-- Jobs with ids above $1, at most $5 (all when NULL), by id: only those of
-- task $4 unless it is NULL, only those in state $2 (a state's name) at
-- time $3 unless it is NULL, only those carrying key $6 (as their unique
-- key, or as their concurrency or rate key of name $7 and value $8), whose
-- parameters or an attempt's error hold the lower-case text $9 (compared in
-- lower case), submitted from $10 and before $11, each unless NULL. A claim
-- that has not started is queued, as counts_by_task.sql counts it. The state
-- is written out state by state (not as a CASE) so that, planned with its
-- value, a page by task and state or by state is read from the index
-- (task, state, id) or (state, id). With each, its name, run_if, the id
-- and name of the job whose end cancelled it, the schedule and tick that
-- made it, its settings (its attempts per round as submitted) and the keys
-- it carries (a flow key as NAME or NAME:VALUE).
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started, j.name,
       j.run_if, j.cause, (SELECT c.name FROM runyard.jobs c WHERE c.id = j.cause), j.schedule,
       j.tick, j.attempts_per_round, j.backoff, j.timeout_us, j.priority, j.mode, j.isolate,
       j.unique_key,
       j.ckey_name || CASE WHEN COALESCE(j.ckey_value, '') = '' THEN '' ELSE ':' || j.ckey_value END,
       j.rkey_name || CASE WHEN COALESCE(j.rkey_value, '') = '' THEN '' ELSE ':' || j.rkey_value END
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
