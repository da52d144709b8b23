INSERT INTO runyard_attempts (job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
