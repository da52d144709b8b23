-- Puts dead or cancelled job ?2 back at time ?1 with a fresh round of
-- attempts: in state ?3 (waiting, or blocked with ?4 pending parents),
-- given the frontier as its tag by the next claim.
UPDATE runyard_jobs
SET state = ?3, run_at = ?1, max_attempts = attempt + attempts_per_round,
    cancel_requested = 0, pending = ?4, cause = NULL, tag = NULL
WHERE id = ?2 AND state IN ({DEAD}, {CANCELLED})
