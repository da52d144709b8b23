-- Blocked job ?1 has ?2 pending parents left (only `pending` is written,
-- which no index holds).
UPDATE runyard_jobs SET pending = ?2 WHERE id = ?1 AND state = {BLOCKED}
