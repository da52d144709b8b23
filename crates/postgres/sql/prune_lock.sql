-- Locks the jobs that prune.sql may delete (its arguments): a transaction
-- adding a child to one of them either committed first, and the delete,
-- a statement of its own that starts once these locks are held, sees the
-- new edge; or it waits, and then finds its parent gone.
SELECT id FROM runyard.jobs
WHERE id >= $3 AND id < $3 + $4 AND state = ANY($1) AND finished_at < $2
ORDER BY id FOR UPDATE
