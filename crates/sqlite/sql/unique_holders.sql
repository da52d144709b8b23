-- The jobs that wait or are blocked with one of the unique keys in the JSON
-- array ?1, by key and id (the first of a key is its holder): one lookup
-- for a whole batch.
SELECT unique_key, id, state, tag FROM runyard_jobs INDEXED BY runyard_jobs_unique
WHERE unique_key IN (SELECT value FROM json_each(?1)) AND state IN ({WAITING}, {BLOCKED})
ORDER BY unique_key, id
