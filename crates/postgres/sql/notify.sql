-- Wakes the workers listening on channel $1.
SELECT pg_notify($1, '')
