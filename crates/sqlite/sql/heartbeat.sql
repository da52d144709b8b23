-- Extends worker ?4's lease on attempt ?3 (claim ?5) of job ?2 until ?1;
-- returns whether someone asked to cancel it, whether it started and its
-- task (no row: the lease is lost).
UPDATE runyard_jobs SET lease_until = ?1
WHERE id = ?2 AND attempt = ?3 AND state = {RUNNING} AND worker = ?4 AND claims = ?5
RETURNING cancel_requested, started, task
