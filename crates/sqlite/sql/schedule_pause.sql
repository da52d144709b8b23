-- Pauses (?2 = 1) or resumes (?2 = 0) schedule ?1.
UPDATE runyard_schedules SET paused = ?2 WHERE name = ?1
