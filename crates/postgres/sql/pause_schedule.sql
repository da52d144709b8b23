-- Pauses ($2 true) or resumes schedule $1; no row when there is none.
UPDATE runyard.schedules SET paused = $2 WHERE name = $1 RETURNING name
