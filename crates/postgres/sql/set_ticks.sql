-- Marks jobs $1 as made by schedule $2[i] at tick $3[i].
UPDATE runyard.jobs j SET schedule = t.schedule, tick = t.tick
FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(id, schedule, tick)
WHERE j.id = t.id
