-- Removes schedule $1 (the jobs it made stay).
DELETE FROM runyard.schedules WHERE name = $1
