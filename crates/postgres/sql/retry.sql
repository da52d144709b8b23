-- Puts dead or cancelled job $2 back at $1 with a fresh round of attempts:
-- blocked while $3 of its parents have not ended, waiting otherwise (with
-- the frontier as its fair tag).
UPDATE runyard.jobs SET state = CASE WHEN $3::integer > 0 THEN {BLOCKED} ELSE {WAITING} END,
run_at = $1, max_attempts = attempt + attempts_per_round, pending = $3, cause = NULL,
cancel_requested = false, finished_at = NULL,
tag = CASE WHEN $3::integer > 0 THEN NULL ELSE {FRONTIER} END WHERE id = $2 AND state IN ({DEAD}, {CANCELLED})
