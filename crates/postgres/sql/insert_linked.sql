-- Adds the jobs of a batch with names or parents, given as parallel arrays
-- with their ids (drawn from the sequence) and first states worked out
-- (see src/flow.rs): state $13[i] (blocked, waiting or cancelled), name
-- $14[i], run_if $15[i], pending parents $16[i], cause $17[i], whether a
-- later job of the batch is after it $18[i], fair tag $19[i], and the flow
-- columns (see migration 0005): unique key $20[i], the task's concurrency
-- $21[i] and rate $22[i] per $23[i] us, concurrency key $24[i]:$25[i] with
-- its limit $26[i], rate key $27[i]:$28[i] with its rate $29[i] per $30[i]
-- us; at time $1. A job whose idempotency key is taken is skipped. Returns
-- the added ids.
INSERT INTO runyard.jobs
    (id, task, params, state, priority, run_at, enqueued_at, finished_at, max_attempts,
     attempts_per_round, backoff, timeout_us, mode, isolate, idempotency_key, name, run_if,
     pending, cause, children, tag, unique_key, task_conc, task_rate_n, task_rate_us, ckey_name,
     ckey_value, ckey_conc, rkey_name, rkey_value, rkey_rate_n, rkey_rate_us)
SELECT j.id, j.task, j.params, j.state, j.priority, j.run_at, $1,
       CASE WHEN j.state = {CANCELLED} THEN $1::bigint END, j.max_attempts, j.max_attempts,
       j.backoff, j.timeout_us, j.mode, j.isolate, j.key, j.name, j.run_if, j.pending, j.cause,
       j.children, j.tag, j.uk, j.tc, j.trn, j.trus, j.ckn, j.ckv, j.ckc, j.rkn, j.rkv, j.rrn,
       j.rrus
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::integer[],
            $8::text[], $9::bigint[], $10::text[], $11::boolean[], $12::text[], $13::smallint[],
            $14::text[], $15::smallint[], $16::integer[], $17::bigint[], $18::boolean[], $19::bigint[],
            $20::text[], $21::integer[], $22::integer[], $23::bigint[], $24::text[], $25::text[],
            $26::integer[], $27::text[], $28::text[], $29::integer[], $30::bigint[])
    WITH ORDINALITY AS j(id, task, params, priority, run_at, max_attempts, backoff, timeout_us,
                         mode, isolate, key, state, name, run_if, pending, cause, children, tag,
                         uk, tc, trn, trus, ckn, ckv, ckc, rkn, rkv, rrn, rrus, ord)
ORDER BY j.ord
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id
