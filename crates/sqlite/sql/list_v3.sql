-- As list.sql, for a file of schema 3 or older read as it is (its jobs
-- have no workflow columns): jobs with ids above ?1, at most ?5, by id,
-- only those of task ?4 unless it is NULL, and only those in state ?2 at
-- time ?3 unless it is NULL, and the filters ?6 to ?9 of list.sql (no job
-- of such a file carries a key).
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
  AND ?6 IS NULL
  AND (?7 IS NULL OR instr(lower(params), ?7) > 0
       OR EXISTS (SELECT 1 FROM runyard_attempts a
                  WHERE a.job = runyard_jobs.id AND instr(lower(a.error), ?7) > 0))
  AND (?8 IS NULL OR enqueued_at >= ?8)
  AND (?9 IS NULL OR enqueued_at < ?9)
ORDER BY id
LIMIT ?5
