-- Gives new jobs $1[i] their unique keys and the limits they carry (see
-- migration 0005), and a due job with a fairness key its tag $13[i]
-- (tag_keyed.sql; NULL keeps the job's own).
UPDATE runyard.jobs j
SET unique_key = u.uk, task_conc = u.tc, task_rate_n = u.trn, task_rate_us = u.trus,
    ckey_name = u.ckn, ckey_value = u.ckv, ckey_conc = u.ckc, rkey_name = u.rkn,
    rkey_value = u.rkv, rkey_rate_n = u.rrn, rkey_rate_us = u.rrus, tag = COALESCE(u.tg, j.tag)
FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::integer[], $5::bigint[], $6::text[],
            $7::text[], $8::integer[], $9::text[], $10::text[], $11::integer[], $12::bigint[],
            $13::bigint[])
    AS u(id, uk, tc, trn, trus, ckn, ckv, ckc, rkn, rkv, rrn, rrus, tg)
WHERE j.id = ANY($1) AND j.id = u.id
