-- Locks unique keys $2 for this transaction, in one order whoever takes
-- them ($1 names the queue's schema).
SELECT pg_advisory_xact_lock(hashtext($1), s.h)
FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) AS k ORDER BY 1 OFFSET 0) s
