-- Sets the state of reblocked jobs $1[i] to $2[i] (blocked, waiting or
-- cancelled) with pending count $3[i] and cause $4[i], at time $5.
UPDATE runyard.jobs j
SET state = r.state, pending = r.pending, cause = r.cause,
    finished_at = CASE WHEN r.state = {CANCELLED} THEN $5::bigint END,
    run_at = CASE WHEN r.state = {WAITING} THEN GREATEST(j.run_at, $5) ELSE j.run_at END
FROM (SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::integer[], $4::bigint[])
      AS r(id, state, pending, cause) OFFSET 0) r
WHERE j.id = ANY($1) AND j.id = r.id
