-- Cancels those of jobs $1 that wait, at $2.
UPDATE runyard.jobs SET state = {CANCELLED}, finished_at = $2 WHERE id = ANY($1) AND state = {WAITING}
