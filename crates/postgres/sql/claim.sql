-- The plain claim, while no job of the queue is limited or keyed (the
-- `flow` row of meta is absent; see claim_limited in migrations 0005 and 0007).
-- Claims up to $4 ready jobs, in fair order (promote.sql has tagged
-- those due), (only of the tasks in $5 unless it is NULL) for
-- worker $1 with a lease until $2, at time $3. Rows another worker is
-- claiming are skipped, not waited for. The last columns say whether the
-- job has parents, and its tag (their outputs are read next, see parents.sql). (The ids go through an array so
-- that the update finds its rows by primary key, not by a join.)
UPDATE runyard.jobs j
SET state = {RUNNING}, attempt = j.attempt + 1, claims = j.claims + 1, worker = $1, lease_until = $2, claimed_at = $3, started = false
WHERE j.id = ANY(ARRAY(
    SELECT id FROM runyard.jobs
    WHERE state = {WAITING} AND tag IS NOT NULL AND ($5::text[] IS NULL OR task = ANY($5))
      AND NOT EXISTS (SELECT 1 FROM runyard.meta WHERE key = 'flow')
    ORDER BY priority DESC, tag, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
))
RETURNING j.id, j.attempt, j.task, j.params, j.max_attempts, j.backoff, j.timeout_us, j.priority,
          j.mode, j.isolate, j.run_at, j.claims,
          EXISTS (SELECT 1 FROM runyard.edges e WHERE e.child = j.id), j.tag, j.schedule, j.tick
