-- Adds the edges child $1[i] after parent $2[i], seen under key $3[i]
-- (in a list when $4[i]), the $5[i]-th of the child's parents.
INSERT INTO runyard.edges (child, parent, key, many, position)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::integer[])
