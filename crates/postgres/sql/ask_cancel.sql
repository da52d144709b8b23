-- Asks the workers of those of jobs $1 that run to stop them.
UPDATE runyard.jobs SET cancel_requested = true WHERE id = ANY($1) AND state = {RUNNING}
