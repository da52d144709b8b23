-- Per pair ($1[i], $2[i]) of a unique key and a time: the latest job with
-- that key that succeeded at that time or later, as (i, id).
SELECT DISTINCT ON (u.i) u.i, j.id
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(k, since, i)
JOIN runyard.jobs j ON j.unique_key = u.k AND j.finished_at >= u.since
WHERE j.state = {SUCCEEDED}
ORDER BY u.i, j.finished_at DESC, j.id DESC
