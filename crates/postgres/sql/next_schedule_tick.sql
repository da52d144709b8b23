-- The earliest next tick of the schedules not paused.
SELECT min(next_tick) FROM runyard.schedules WHERE NOT paused
