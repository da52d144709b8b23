-- Whether job $1 is in the queue and has not ended: waiting (queued, or
-- scheduled for a retry), blocked or running.
SELECT EXISTS (SELECT 1 FROM runyard.jobs WHERE id = $1 AND state IN ({WAITING}, {BLOCKED}, {RUNNING}))
