-- Gives the waiting jobs due at ?1 that have no tag the tag ?2 (the frontier).
UPDATE runyard_jobs SET tag = ?2 WHERE state = {WAITING} AND tag IS NULL AND run_at <= ?1
