-- Locks the buckets of unique keys $2 for this transaction, in ascending
-- order whoever takes them ($1 names the queue's schema): a key's bucket
-- is hashtext(key) & 127, so a batch takes at most 128 locks however many
-- keys it has. `runyard.submit` (migration 0013) takes the same lock for
-- its key.
SELECT pg_advisory_xact_lock(hashtext($1), s.b)
FROM (SELECT DISTINCT hashtext(k) & 127 AS b FROM unnest($2::text[]) AS k ORDER BY 1 OFFSET 0) s
