-- Deletes worker $1's own row (host $2, pid $3, started at $4).
DELETE FROM runyard.workers WHERE name = $1 AND host = $2 AND pid = $3 AND started_at = $4
