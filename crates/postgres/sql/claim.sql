-- The plain claim, while no job of the queue is limited or keyed (the
-- `flow` row of meta is absent; see claim_limited in migrations 0005 and 0007).
-- Claims up to $4 ready jobs, in fair order (promote.sql has tagged
-- those due), (only of the tasks in $5 unless it is NULL) for
-- worker $1 with a lease until $2, at time $3. Rows another worker is
-- claiming are skipped, not waited for. The last columns say whether the
-- job has parents, and its tag (their outputs are read next, see parents.sql). (The ids go through an array so
-- that the update finds its rows by primary key, not by a join.)
--
-- Where the jobs are looked for depends on how many wait, by the kept
-- counts (migration 0009), which agree with the jobs in the statement's
-- snapshot. With more than 256, by a walk of the fair order's index
-- (`jobs_fair`). With 256 or fewer, from the newest end of the state index
-- (`jobs_state`), reading no more than that many waiting jobs and then
-- putting them in fair order: right after a deep drain the head of the
-- fair order is a long run of entries of jobs that have left the waiting
-- state, which every walk would read until vacuum removes them (the new
-- jobs are at its tail), while the newest end of the state index starts
-- at them. Both ways lock the same jobs in the same order.
WITH w AS MATERIALIZED (
    SELECT coalesce(sum(c.n), 0)::bigint AS n FROM runyard.counts c WHERE c.state = {WAITING}
)
UPDATE runyard.jobs j
SET state = {RUNNING}, attempt = j.attempt + 1, claims = j.claims + 1, worker = $1, lease_until = $2, claimed_at = $3, started = false
WHERE j.id = ANY(CASE WHEN (SELECT n FROM w) <= {FEW} THEN ARRAY(
    -- (The state test is a CASE so that the rows are found by primary
    -- key, not by a walk of the fair order's index.)
    SELECT f.id FROM runyard.jobs f
    WHERE f.id = ANY(ARRAY(SELECT u.id FROM runyard.jobs u WHERE u.state = {WAITING}
                           ORDER BY u.id DESC LIMIT (SELECT n FROM w)))
      AND CASE WHEN f.state = {WAITING} THEN f.tag IS NOT NULL ELSE false END
      AND ($5::text[] IS NULL OR f.task = ANY($5))
      AND NOT EXISTS (SELECT 1 FROM runyard.meta WHERE key = 'flow')
    ORDER BY f.priority DESC, f.tag, f.id
    LIMIT $4
    FOR UPDATE OF f SKIP LOCKED
) ELSE ARRAY(
    SELECT id FROM runyard.jobs
    WHERE state = {WAITING} AND tag IS NOT NULL AND ($5::text[] IS NULL OR task = ANY($5))
      AND NOT EXISTS (SELECT 1 FROM runyard.meta WHERE key = 'flow')
    ORDER BY priority DESC, tag, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) END)
RETURNING j.id, j.attempt, j.task, j.params, j.max_attempts, j.backoff, j.timeout_us, j.priority,
          j.mode, j.isolate, j.run_at, j.claims,
          EXISTS (SELECT 1 FROM runyard.edges e WHERE e.child = j.id), j.tag, j.schedule, j.tick
