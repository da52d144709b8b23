-- $1 new job ids, for a COPY.
SELECT nextval('runyard.jobs_id_seq') FROM generate_series(1, $1::bigint)
