-- The jobs with ids from ?1 to ?1 + ?2 that prune deletes: finished (dead
-- ones only when ?4) before ?3 (a finished job's run-at is when it ended),
-- none of whose dependents is still to run (its output is still to be
-- read).
SELECT j.id FROM runyard_jobs j
WHERE j.id >= ?1 AND j.id < ?1 + ?2 AND j.run_at < ?3
  AND (j.state IN ({SUCCEEDED}, {CANCELLED}) OR (?4 AND j.state = {DEAD}))
  AND NOT (j.children > 0 AND EXISTS (
      SELECT 1 FROM runyard_edges e JOIN runyard_jobs c ON c.id = e.child
      WHERE e.parent = j.id AND c.state IN ({WAITING}, {BLOCKED}, {RUNNING})))
