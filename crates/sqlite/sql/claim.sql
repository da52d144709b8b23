-- (Each statement on the flow indexes names its index: without statistics
-- the planner would take the state index and sort.)
-- Claims up to ?4 due jobs in fair order (their tags) for worker ?1 with a lease until ?2, at time ?3
-- (with each its number of parents: only those with some have their
-- parents' outputs read; and the schedule and tick that made it).
-- SQLite has no SKIP LOCKED: a claim runs in a write transaction (one writer
-- at a time), so this select-and-update is atomic.
UPDATE runyard_jobs
SET state = {RUNNING}, attempt = attempt + 1, claims = claims + 1, worker = ?1, lease_until = ?2, claimed_at = ?3, started = 0
WHERE id IN (
    SELECT id FROM runyard_jobs INDEXED BY runyard_jobs_fair
    WHERE state = {WAITING} AND tag IS NOT NULL AND run_at <= ?3
    ORDER BY priority DESC, tag, id
    LIMIT ?4
)
RETURNING id, attempt, task, params, max_attempts, backoff, timeout_us, priority, mode, isolate, run_at, claims, parents, tag,
          schedule, tick
