-- For each pair [key, since] of the JSON array ?1: the key, the since, and
-- the latest job with that unique key that succeeded at since or later (a
-- succeeded job's run-at is its end), NULL when none did.
SELECT k.key, k.since,
    (SELECT id FROM runyard_jobs INDEXED BY runyard_jobs_unique
     WHERE unique_key = k.key AND state = {SUCCEEDED} AND run_at >= k.since
     ORDER BY run_at DESC, id DESC LIMIT 1)
FROM (SELECT json_extract(value, '$[0]') AS key, json_extract(value, '$[1]') AS since
      FROM json_each(?1)) AS k
