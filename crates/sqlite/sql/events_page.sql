-- At most ?2 recorded actions with ids below ?1, newest first.
SELECT id, at, action, jobs, detail, via, client FROM runyard_events
WHERE id < ?1 ORDER BY id DESC LIMIT ?2
