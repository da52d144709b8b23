-- The claims that have not started of task ?1 (of every task when ?1 is
-- NULL), in id order.
SELECT id, task FROM runyard_jobs
WHERE state = {RUNNING} AND started = 0 AND (?1 IS NULL OR task = ?1) ORDER BY id
