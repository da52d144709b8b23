-- The children of jobs $1 that were cancelled naming job $2 as the cause
-- (a retry of $2 gives them back, see src/flow.rs), locked in id order:
-- id and run_if.
SELECT id, run_if FROM runyard.jobs
WHERE id = ANY(ARRAY(SELECT DISTINCT child FROM runyard.edges WHERE parent = ANY($1) ORDER BY 1))
  AND state = {CANCELLED} AND cause = $2
ORDER BY id FOR UPDATE
