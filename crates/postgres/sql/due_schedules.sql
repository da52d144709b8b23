-- The schedules not paused whose next tick is at time $1 or before, by
-- the schedules_due index: earliest first.
SELECT name FROM runyard.schedules
WHERE NOT paused AND next_tick IS NOT NULL AND next_tick <= $1
ORDER BY next_tick, name
