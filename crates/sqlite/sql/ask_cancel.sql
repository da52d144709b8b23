-- Asks job ?1's worker to stop it (it is running).
UPDATE runyard_jobs SET cancel_requested = 1 WHERE id = ?1
