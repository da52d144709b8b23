-- Puts dead or cancelled job ?2 back at time ?1 with a fresh round of attempts.
UPDATE runyard_jobs
SET state = {WAITING}, run_at = ?1, max_attempts = attempt + attempts_per_round,
    cancel_requested = 0
WHERE id = ?2 AND state IN ({DEAD}, {CANCELLED})
