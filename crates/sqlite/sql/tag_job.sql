-- Gives job ?1 tag ?3 if it is waiting, due at ?2 and has none.
UPDATE runyard_jobs SET tag = ?3
WHERE id = ?1 AND state = {WAITING} AND tag IS NULL AND run_at <= ?2
