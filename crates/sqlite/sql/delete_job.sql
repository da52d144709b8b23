-- Deletes job ?1 (it has finished: no worker holds it, no blocked job
-- waits on it); delete_attempts.sql and delete_edges.sql go with it.
DELETE FROM runyard_jobs WHERE id = ?1
