-- Claims the waiting jobs whose ids are in the JSON array ?4 for worker ?1
-- with a lease until ?2, at time ?3 (a claim under limits, which chose them
-- in Rust), as claim.sql returns them.
UPDATE runyard_jobs
SET state = {RUNNING}, attempt = attempt + 1, claims = claims + 1, worker = ?1, lease_until = ?2, claimed_at = ?3, started = 0
WHERE id IN (SELECT value FROM json_each(?4)) AND state = {WAITING}
RETURNING id, attempt, task, params, max_attempts, backoff, timeout_us, priority, mode, isolate, run_at, claims, parents, tag,
          schedule, tick
