-- Tags new due jobs $1[i], of fairness keys $2[i] (in batch order), with
-- frontier $3: a key's jobs take max(last + 1, frontier) and on, and the
-- key's last tag moves to its last job's.
WITH b AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS b(id, fkey, ord)
), ranked AS (
    SELECT id, fkey, row_number() OVER (PARTITION BY fkey ORDER BY ord) AS rank,
           count(*) OVER (PARTITION BY fkey) AS n
    FROM b
), k AS (
    SELECT DISTINCT fkey, n FROM ranked
), up AS (
    INSERT INTO runyard.key_tags AS t (key, last)
    SELECT fkey, $3::bigint + n - 1 FROM k ORDER BY fkey
    ON CONFLICT (key) DO UPDATE SET last = GREATEST(t.last + 1, $3::bigint) + excluded.last - $3::bigint
    RETURNING t.key, t.last
)
UPDATE runyard.jobs j SET tag = up.last - r.n + r.rank
FROM ranked r JOIN up ON up.key = r.fkey
WHERE j.id = ANY($1) AND j.id = r.id
