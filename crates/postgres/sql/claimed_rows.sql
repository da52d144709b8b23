-- Jobs $1 as claim.sql returns them, once claim_limited.sql has claimed
-- them, and whether each took a slot of a concurrency limit in force (its
-- task's or its key's, carried or stored).
SELECT j.id, j.attempt, j.task, j.params, j.max_attempts, j.backoff, j.timeout_us, j.priority,
       j.mode, j.isolate, j.run_at, j.claims,
       EXISTS (SELECT 1 FROM runyard.edges e WHERE e.child = j.id), j.tag, j.schedule, j.tick,
       (j.task_conc IS NOT NULL OR j.ckey_conc IS NOT NULL
        OR EXISTS (SELECT 1 FROM runyard.limits l
                   WHERE l.concurrency IS NOT NULL
                     AND ((l.kind = 0 AND l.name = j.task)
                          OR (l.kind = 1 AND l.name = j.ckey_name
                              AND l.value IN (j.ckey_value, '')))))
FROM runyard.jobs j WHERE j.id = ANY($1)
