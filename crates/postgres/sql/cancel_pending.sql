-- Cancels every waiting job at $1; returns their ids.
UPDATE runyard.jobs SET state = {CANCELLED}, finished_at = $1 WHERE state = {WAITING} RETURNING id
