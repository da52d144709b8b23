-- Gives worker ?4's unstarted claim ?5 (attempt ?3) of job ?2 back at time
-- ?1: queued again, the attempt number given back (the claim number stays).
UPDATE runyard_jobs
SET state = {WAITING}, attempt = attempt - 1, worker = NULL, lease_until = NULL,
    run_at = MIN(run_at, ?1)
WHERE id = ?2 AND attempt = ?3 AND state = {RUNNING} AND worker = ?4 AND claims = ?5
