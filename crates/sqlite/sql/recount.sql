-- Job ?1, waiting or blocked after a job just retried, has ?2 pending
-- parents: a waiting one with some is blocked again.
UPDATE runyard_jobs
SET pending = ?2, state = CASE WHEN ?2 > 0 THEN {BLOCKED} ELSE state END
WHERE id = ?1 AND state IN ({WAITING}, {BLOCKED})
