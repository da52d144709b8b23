-- The latest job with unique key $1 that succeeded at $2 or later.
SELECT id FROM runyard.jobs
WHERE unique_key = $1 AND finished_at >= $2 AND state = {SUCCEEDED}
ORDER BY finished_at DESC, id DESC LIMIT 1
