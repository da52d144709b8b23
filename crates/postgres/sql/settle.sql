-- Moves on the blocked children of jobs $1[i], which have just ended in
-- state $2[i] (a failure naming job $3[i] as the cause), at time $4: a
-- child that runs only on success and has a parent that failed is
-- cancelled, naming that cause (the lowest, when several); otherwise its
-- parents that ended as it needs are taken off its pending count, and at
-- zero it is waiting (from its run-at, or now). Children are locked in id
-- order; their rows are re-read if another transaction changed them
-- meanwhile, so two parents ending at once on two workers each take their
-- own edges off the count that the other left (see src/flow.rs). Returns
-- the children moved: id, new state, cause, whether they have children.
WITH ended AS (
    SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[]) AS p(id, state, cause)
), hit AS (
    SELECT e.child,
           COUNT(*) AS edges,
           COUNT(*) FILTER (WHERE p.state = {SUCCEEDED}) AS succeeded,
           MIN(p.cause) FILTER (WHERE p.state <> {SUCCEEDED}) AS failed_by
    FROM runyard.edges e JOIN ended p ON e.parent = p.id
    GROUP BY e.child
)
UPDATE runyard.jobs j
SET state = CASE
        WHEN j.run_if = 0 AND h.failed_by IS NOT NULL THEN {CANCELLED}
        WHEN j.pending - CASE WHEN j.run_if = 0 THEN h.succeeded ELSE h.edges END <= 0
            THEN {WAITING}
        ELSE {BLOCKED} END,
    tag = NULL,
    pending = GREATEST(j.pending - CASE WHEN j.run_if = 0 THEN h.succeeded ELSE h.edges END, 0),
    cause = CASE WHEN j.run_if = 0 AND h.failed_by IS NOT NULL THEN h.failed_by ELSE j.cause END,
    finished_at = CASE WHEN j.run_if = 0 AND h.failed_by IS NOT NULL THEN $4::bigint END,
    run_at = CASE
        WHEN j.run_if = 0 AND h.failed_by IS NOT NULL THEN j.run_at
        WHEN j.pending - CASE WHEN j.run_if = 0 THEN h.succeeded ELSE h.edges END <= 0
            THEN GREATEST(j.run_at, $4::bigint)
        ELSE j.run_at END
FROM hit h
WHERE j.id = ANY(ARRAY(SELECT child FROM hit ORDER BY child)) AND j.id = h.child
  AND j.state = {BLOCKED}
RETURNING j.id, j.state, j.cause, j.children
