-- Gives back the concurrency slots running jobs $1 hold (they are leaving
-- running: rescued), in one statement for the batch, counters locked in
-- target order.
UPDATE runyard.running r
SET n = r.n - (SELECT count(*) FROM runyard.jobs j, unnest(j.held) AS h(t)
               WHERE j.id = ANY($1) AND j.state = {RUNNING} AND h.t = r.target)
WHERE r.target = ANY(ARRAY(SELECT DISTINCT h.t FROM runyard.jobs j, unnest(j.held) AS h(t)
                           WHERE j.id = ANY($1) AND j.state = {RUNNING} ORDER BY 1))
