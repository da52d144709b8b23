-- The limited claim (see claim_limited in migration 0007): worker $1,
-- lease until $2, at $3, at most $4 jobs of the tasks $5 (all when NULL),
-- over a window of $6 jobs, on the database's clock when $7. Returns the
-- claimed ids with the start each rate admitted (claimed_rows.sql reads
-- them next, in the same transaction).
SELECT out_id, out_admitted FROM runyard.claim_limited($1, $2, $3, $4, $5, $6, $7)
