-- Gives the due waiting jobs without a tag (at $1) the frontier, ties by
-- id: the first claim after a job's run-at places it in the fair order.
UPDATE runyard.jobs j SET tag = f.v
FROM (SELECT runyard.frontier() AS v) f
WHERE j.id = ANY(ARRAY(
    SELECT u.id FROM runyard.jobs u
    WHERE u.state = {WAITING} AND u.tag IS NULL AND u.run_at <= $1
    ORDER BY u.run_at, u.id LIMIT 10000 FOR UPDATE SKIP LOCKED))
