-- Gives back the concurrency slots running jobs $1 hold (they are leaving
-- running: rescued), in one statement for the batch: counted per counter,
-- each counter found by its key (in target order).
UPDATE runyard.running r SET n = r.n - g.c
FROM (SELECT h.t, count(*)::integer AS c
      FROM runyard.jobs j, unnest(j.held) AS h(t)
      WHERE j.id = ANY($1) AND j.state = {RUNNING}
      GROUP BY h.t ORDER BY h.t) g
WHERE r.target = g.t
