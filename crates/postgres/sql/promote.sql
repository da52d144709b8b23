-- Gives the due waiting jobs without a tag (at $1) the frontier, ties by
-- id: the first claim after a job's run-at places it in the fair order.
-- The frontier is a subplan of the first row updated: with none, it is not
-- read (on an empty queue reading it takes a tag).
UPDATE runyard.jobs j SET tag = (SELECT runyard.frontier())
WHERE j.id = ANY(ARRAY(
    SELECT u.id FROM runyard.jobs u
    WHERE u.state = {WAITING} AND u.tag IS NULL AND u.run_at <= $1
    ORDER BY u.run_at, u.id LIMIT 10000 FOR UPDATE SKIP LOCKED))
