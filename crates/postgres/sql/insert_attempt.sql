-- Records attempt $2 of job $1, by worker $10.
INSERT INTO runyard.attempts
(job, n, outcome, started_at, duration_us, queued_us, error, permanent, detail, worker)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
