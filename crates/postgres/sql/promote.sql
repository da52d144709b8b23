-- Gives the due waiting jobs without a tag (at $1) the frontier, ties by
-- id: the first claim after a job's run-at places it in the fair order.
-- The frontier is a subplan of the first row updated: with none, it is not
-- read (on an empty queue reading it takes a tag). With 256 or fewer
-- waiting (by the kept counts), they are read from the newest end of the
-- state index, as claim.sql does and for the same reason (a mass of jobs
-- promoted and drained leaves the head of `jobs_due` a long run of
-- entries of jobs no longer waiting).
WITH w AS MATERIALIZED (
    SELECT coalesce(sum(c.n), 0)::bigint AS n FROM runyard.counts c WHERE c.state = {WAITING}
)
UPDATE runyard.jobs j SET tag = {FRONTIER}
WHERE j.id = ANY(CASE WHEN (SELECT n FROM w) <= {FEW} THEN ARRAY(
    SELECT u.id FROM runyard.jobs u
    WHERE u.id = ANY(ARRAY(SELECT v.id FROM runyard.jobs v WHERE v.state = {WAITING}
                           ORDER BY v.id DESC LIMIT (SELECT n FROM w)))
      AND CASE WHEN u.state = {WAITING} THEN u.tag IS NULL AND u.run_at <= $1 ELSE false END
    ORDER BY u.run_at, u.id LIMIT 10000 FOR UPDATE OF u SKIP LOCKED
) ELSE ARRAY(
    SELECT u.id FROM runyard.jobs u
    WHERE u.state = {WAITING} AND u.tag IS NULL AND u.run_at <= $1
    ORDER BY u.run_at, u.id LIMIT 10000 FOR UPDATE SKIP LOCKED
) END)
