-- Undoes job ?2's claim that never started, at time ?1: queued again, the
-- attempt number given back, the lost claim counted.
UPDATE runyard_jobs
SET state = {WAITING}, attempt = attempt - 1, worker = NULL, lease_until = NULL,
    run_at = MIN(run_at, ?1), lost_claims = lost_claims + 1
WHERE id = ?2
