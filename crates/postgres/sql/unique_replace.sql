-- The holder $1 of a unique key takes parameters $2 and run-at $3 (at
-- $4): a run-at ahead takes its tag away until it is due.
UPDATE runyard.jobs SET params = $2::text, run_at = $3::bigint,
    tag = CASE WHEN $3::bigint > $4::bigint THEN NULL ELSE tag END
WHERE id = $1
