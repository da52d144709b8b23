-- Adds the jobs of a batch with names or parents, given as parallel arrays
-- with their ids (drawn from the sequence) and first states worked out
-- (see src/flow.rs): state $13[i] (blocked, waiting or cancelled), name
-- $14[i], run_if $15[i], pending parents $16[i], cause $17[i], whether a
-- later job of the batch is after it $18[i], fair tag $19[i]; at time $1. A job whose
-- idempotency key is taken is skipped. Returns the added ids.
INSERT INTO runyard.jobs
    (id, task, params, state, priority, run_at, enqueued_at, finished_at, max_attempts,
     attempts_per_round, backoff, timeout_us, mode, isolate, idempotency_key, name, run_if,
     pending, cause, children, tag)
SELECT j.id, j.task, j.params, j.state, j.priority, j.run_at, $1,
       CASE WHEN j.state = {CANCELLED} THEN $1::bigint END, j.max_attempts, j.max_attempts,
       j.backoff, j.timeout_us, j.mode, j.isolate, j.key, j.name, j.run_if, j.pending, j.cause,
       j.children, j.tag
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::integer[],
            $8::text[], $9::bigint[], $10::text[], $11::boolean[], $12::text[], $13::smallint[],
            $14::text[], $15::smallint[], $16::integer[], $17::bigint[], $18::boolean[], $19::bigint[])
    WITH ORDINALITY AS j(id, task, params, priority, run_at, max_attempts, backoff, timeout_us,
                         mode, isolate, key, state, name, run_if, pending, cause, children, tag,
                         ord)
ORDER BY j.ord
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id
