-- Jobs with ids above ?1, at most ?5, by id: only those of task ?4 unless
-- it is NULL, only those in state ?2 (a state's name) at time ?3 unless it
-- is NULL, only those carrying key ?6 (unique, concurrency or rate key),
-- whose parameters or an attempt's error hold the lower-case text ?7
-- (compared in lower case), and submitted from ?8 and before ?9, each unless
-- NULL. A claim that has not started is queued, as counts.sql counts it.
-- Each with its name, run_if, number of parents, and the cause of its
-- cancellation with that job's name, the schedule and tick that made it,
-- its settings (with its attempts per round as submitted, which a retry by
-- hand gives again) and the keys it carries.
SELECT j.id, j.task, j.params, j.state, j.run_at, j.enqueued_at, j.output, j.started,
       j.name, j.run_if, j.parents, j.cause, c.name, j.schedule, j.tick,
       j.attempts_per_round, j.backoff, j.timeout_us, j.priority, j.mode, j.isolate,
       j.unique_key, j.concurrency_key, j.rate_key
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
  AND (?6 IS NULL OR j.unique_key = ?6 OR j.concurrency_key = ?6 OR j.rate_key = ?6)
  AND (?7 IS NULL OR instr(lower(j.params), ?7) > 0
       OR EXISTS (SELECT 1 FROM runyard_attempts a
                  WHERE a.job = j.id AND instr(lower(a.error), ?7) > 0))
  AND (?8 IS NULL OR j.enqueued_at >= ?8)
  AND (?9 IS NULL OR j.enqueued_at < ?9)
ORDER BY j.id
LIMIT ?5
