-- The earliest next tick of the schedules not paused.
SELECT min(next_tick) FROM runyard_schedules WHERE paused = 0
