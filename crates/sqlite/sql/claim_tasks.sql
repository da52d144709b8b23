-- As claim.sql, only jobs of the tasks in the JSON array ?5.
UPDATE runyard_jobs
SET state = {RUNNING}, attempt = attempt + 1, claims = claims + 1, worker = ?1, lease_until = ?2, claimed_at = ?3, started = 0
WHERE id IN (
    SELECT id FROM runyard_jobs INDEXED BY runyard_jobs_fair
    WHERE state = {WAITING} AND tag IS NOT NULL AND run_at <= ?3 AND task IN (SELECT value FROM json_each(?5))
    ORDER BY priority DESC, tag, id
    LIMIT ?4
)
RETURNING id, attempt, task, params, max_attempts, backoff, timeout_us, priority, mode, isolate, run_at, claims, parents, tag,
          schedule, tick
