-- Ends attempt ?5 of job ?4 under claim ?7, held by worker ?6 (fenced:
-- nothing changes otherwise). A retry waits without a tag until it is due.
-- (A success is counted by counts_succeeded.sql, a batch at a time.)
UPDATE runyard_jobs
SET state = ?1, run_at = ?2, output = ?3, worker = NULL, lease_until = NULL, cancel_requested = 0, tag = NULL
WHERE id = ?4 AND state = {RUNNING} AND attempt = ?5 AND worker = ?6 AND claims = ?7
