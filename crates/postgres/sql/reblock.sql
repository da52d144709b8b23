-- Gives the children of jobs $1 that were cancelled naming job $2 as the
-- cause their blocked state back (a retry of $2; their pending parents are
-- counted next, see src/flow.rs). Locks them in id order. Returns their
-- ids and run_if.
UPDATE runyard.jobs SET state = {BLOCKED}, cause = NULL, finished_at = NULL
WHERE id = ANY(ARRAY(SELECT DISTINCT child FROM runyard.edges WHERE parent = ANY($1) ORDER BY 1))
  AND state = {CANCELLED} AND cause = $2
RETURNING id, run_if
