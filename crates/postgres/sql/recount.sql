-- Sets jobs $1[i], which a retry moved, to state $2[i] (blocked, waiting,
-- or still cancelled) with pending count $3[i] and cause $4[i], at time $5:
-- one that becomes waiting waits from its run-at, or now.
UPDATE runyard.jobs j
SET state = r.state, pending = r.pending, cause = r.cause,
    finished_at = CASE WHEN r.state = {CANCELLED} THEN j.finished_at END,
    run_at = CASE WHEN r.state = {WAITING} AND j.state <> {WAITING}
                  THEN GREATEST(j.run_at, $5::bigint) ELSE j.run_at END
FROM (SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::integer[], $4::bigint[])
      AS r(id, state, pending, cause) OFFSET 0) r
WHERE j.id = ANY($1) AND j.id = r.id
