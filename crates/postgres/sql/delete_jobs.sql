-- Deletes those of jobs $1 that have finished (succeeded, dead, cancelled)
-- and that no blocked job is after, with their attempts and their links,
-- in one statement; returns the ids deleted. Each row is locked first, so
-- a job that a concurrent retry moves out of its end is not deleted.
WITH doomed AS (
    SELECT j.id FROM runyard.jobs j
    WHERE j.id = ANY($1)
      AND j.state IN ({SUCCEEDED}, {DEAD}, {CANCELLED})
      AND NOT EXISTS (SELECT 1 FROM runyard.edges e JOIN runyard.jobs c ON c.id = e.child
                      WHERE e.parent = j.id AND c.state = {BLOCKED})
    FOR UPDATE OF j
), gone_attempts AS (
    DELETE FROM runyard.attempts WHERE job IN (SELECT id FROM doomed)
), gone_edges AS (
    DELETE FROM runyard.edges
    WHERE parent IN (SELECT id FROM doomed) OR child IN (SELECT id FROM doomed)
)
DELETE FROM runyard.jobs WHERE id IN (SELECT id FROM doomed) RETURNING id
