-- Removes schedule ?1 (the jobs it made stay).
DELETE FROM runyard_schedules WHERE name = ?1
