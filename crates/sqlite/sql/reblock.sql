-- Gives job ?1, cancelled by the end of job ?2, its blocked state back
-- (its pending parents are counted next).
UPDATE runyard_jobs SET state = {BLOCKED}, cause = NULL
WHERE id = ?1 AND state = {CANCELLED} AND cause = ?2
