-- The holder ?1 of a unique key takes new parameters ?2, run-at ?3 and tag ?4.
UPDATE runyard_jobs SET params = ?2, run_at = ?3, tag = ?4 WHERE id = ?1
