-- Gives back the concurrency slots running job $1 holds (it is leaving
-- running: rescued), counters locked in target order.
UPDATE runyard.running r SET n = r.n - 1
WHERE r.target = ANY(ARRAY(SELECT DISTINCT h.t FROM runyard.jobs j, unnest(j.held) AS h(t)
                           WHERE j.id = $1 AND j.state = {RUNNING} ORDER BY 1))
