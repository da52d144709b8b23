-- Moves fairness keys $1[i] on by $2[i] new due jobs each, with frontier
-- $3: a key's new jobs take max(last + 1, frontier) and on, and the key's
-- last tag moves to its last job's. Returns each key's new last tag (the
-- jobs' tags are written with their rows, see src/flow.rs).
INSERT INTO runyard.key_tags AS t (key, last)
SELECT u.k, $3::bigint + u.n - 1 FROM unnest($1::text[], $2::bigint[]) AS u(k, n) ORDER BY u.k
ON CONFLICT (key) DO UPDATE SET last = GREATEST(t.last + 1, $3::bigint) + excluded.last - $3::bigint
RETURNING t.key, t.last
