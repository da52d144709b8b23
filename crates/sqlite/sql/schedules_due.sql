-- The schedules not paused whose next tick is at ?1 or before, by tick.
SELECT name FROM runyard_schedules INDEXED BY runyard_schedules_due
WHERE paused = 0 AND next_tick IS NOT NULL AND next_tick <= ?1
ORDER BY next_tick, name
