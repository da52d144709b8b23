-- Gives new due jobs $1[i] with a fairness key their tags $2[i], when
-- the batch that added them also tagged keyless jobs (tag_keyed.sql).
UPDATE runyard.jobs j SET tag = u.tg
FROM unnest($1::bigint[], $2::bigint[]) AS u(id, tg)
WHERE j.id = ANY($1) AND j.id = u.id
