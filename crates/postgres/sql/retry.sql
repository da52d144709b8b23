-- Puts dead or cancelled job $2 back at $1 with a fresh round of attempts.
UPDATE runyard.jobs SET state = {WAITING}, run_at = $1, max_attempts = attempt + attempts_per_round,
cancel_requested = false, finished_at = NULL WHERE id = $2 AND state IN ({DEAD}, {CANCELLED})
