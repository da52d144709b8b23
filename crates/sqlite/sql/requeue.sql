-- Puts job ?3, whose attempt was lost, in state ?1 (waiting or dead) at ?2.
UPDATE runyard_jobs SET state = ?1, run_at = ?2, worker = NULL, lease_until = NULL WHERE id = ?3
