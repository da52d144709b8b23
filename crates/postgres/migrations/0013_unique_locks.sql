-- runyard queue schema, version 13: unique keys serialize on a bounded set
-- of locks. A key takes the transaction advisory lock (hashtext(schema),
-- hashtext(key) & 127): one of 128 per queue, whatever the number of keys.
-- Each is exclusive, so a queue's submitters hold at most 128 of them at
-- once between them (and one waiting entry each), and no batch can fill
-- the server's lock table (schema 10 took one lock per key: three
-- concurrent batches of 5,000 keys ran out of shared memory at the default
-- max_locks_per_transaction of 64). The Rust insert
-- (sql/lock_unique.sql) takes the same locks, in ascending order, so an
-- SQL submitter and a Rust one of the same key wait for each other. Only
-- the lock of `submit` changes; OR REPLACE keeps its owner and grants.
--
-- Unique keys compare bytewise (collation "C"): equality is the same under
-- every deterministic collation, and the holders' lookup (a descent of
-- `jobs_unique` per key) took about a third less than under a C.UTF-8
-- cluster's collation. Rebuilds `jobs_unique`, not the table.
ALTER TABLE runyard.jobs ALTER COLUMN unique_key TYPE text COLLATE "C";

-- Adds one job of a published task, as the queue's own insert does
-- (docs/backends.md, docs/sql-submit.md): each option left NULL takes the
-- published default; the job is waiting (scheduled while run_at is ahead)
-- with no attempt yet; a due job takes its place in the fair order; a
-- unique key is resolved under its bucket's advisory lock (one of 128 per
-- queue, shared with the Rust insert), an idempotency key by the jobs'
-- index; the insert's trigger wakes the workers at commit.
-- Returns the new job's id, or the id of the job that holds its
-- idempotency or unique key. In the caller's transaction: a rollback
-- leaves no job and wakes no worker.
--
-- SECURITY DEFINER: a role needs only EXECUTE on it (and USAGE on the
-- schema) to submit, and no right on any table; EXECUTE is revoked from
-- PUBLIC below.
CREATE OR REPLACE FUNCTION runyard.submit(
    task            text,
    params          jsonb       DEFAULT '{}',
    max_attempts    integer     DEFAULT NULL,
    timeout         interval    DEFAULT NULL,
    priority        integer     DEFAULT NULL,
    run_at          timestamptz DEFAULT NULL,
    idempotency_key text        DEFAULT NULL,
    unique_key      text        DEFAULT NULL,
    unique_for      interval    DEFAULT NULL,
    on_conflict     text        DEFAULT NULL,
    concurrency_key text        DEFAULT NULL,
    concurrency     integer     DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now     bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    d         record;
    v_params  text;
    v_timeout bigint;
    v_run_at  bigint;
    v_ckn     text;
    v_ckv     text := '';
    v_conflict text := coalesce(submit.on_conflict, 'skip');
    v_id      bigint;
    v_tag     bigint;
    v_front   bigint;
    v_limited boolean;
    v_known   text;
BEGIN
    IF submit.task IS NULL OR submit.task = '' THEN
        RAISE EXCEPTION 'runyard: submit needs a task name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM runyard.tasks t WHERE t.task = submit.task;
    IF NOT FOUND THEN
        -- The first 50 by name, and how many more.
        SELECT string_agg(k.task, ', ' ORDER BY k.task)
               || CASE WHEN max(k.n) > 50 THEN ' and ' || (max(k.n) - 50) || ' more' ELSE '' END
        INTO v_known
        FROM (SELECT t.task, count(*) OVER () AS n FROM runyard.tasks t
              ORDER BY t.task LIMIT 50) k;
        RAISE EXCEPTION 'runyard: no worker of this queue has published a task named "%"',
                submit.task
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN v_known IS NULL
                              THEN 'No task is published yet: a worker publishes the tasks it '
                                   'runs when it starts (runyard worker --queue URL).'
                              ELSE 'Published tasks: ' || v_known || '.' END;
    END IF;
    -- The options, checked as the Rust side checks a job's options.
    IF submit.params IS NULL OR submit.params = 'null'::jsonb THEN
        v_params := '{}';
    ELSIF jsonb_typeof(submit.params) <> 'object' THEN
        RAISE EXCEPTION 'runyard: params must be a JSON object, got %', submit.params::text
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the task''s parameters by name, e.g. ''{"n": 5}''::jsonb.';
    ELSE
        v_params := runyard.json_text(submit.params);
    END IF;
    IF submit.max_attempts IS NOT NULL AND submit.max_attempts < 1 THEN
        RAISE EXCEPTION 'runyard: max_attempts must be >= 1, got %', submit.max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_timeout := runyard.interval_us(submit.timeout);
    IF v_timeout IS NOT NULL AND (v_timeout <= 0 OR v_timeout > 3155760000000000) THEN
        RAISE EXCEPTION 'runyard: timeout must be greater than zero and at most 100 years, got %',
                submit.timeout
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF submit.idempotency_key = '' THEN
        RAISE EXCEPTION 'runyard: idempotency_key must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF submit.unique_key IS NULL THEN
        IF submit.unique_for IS NOT NULL THEN
            RAISE EXCEPTION 'runyard: unique_for needs a unique_key to say which jobs it holds for'
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF submit.on_conflict IS NOT NULL THEN
            RAISE EXCEPTION 'runyard: on_conflict needs a unique_key to say which jobs conflict'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF submit.unique_key = '' OR octet_length(submit.unique_key) > 200 THEN
        RAISE EXCEPTION 'runyard: unique_key must be 1 to 200 bytes, got %',
                octet_length(submit.unique_key)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_conflict NOT IN ('skip', 'replace') THEN
        RAISE EXCEPTION 'runyard: unknown on_conflict "%" (expected skip or replace)',
                submit.on_conflict
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF submit.unique_for IS NOT NULL
       AND (runyard.interval_us(submit.unique_for) <= 0
            OR runyard.interval_us(submit.unique_for) > 3155760000000000) THEN
        RAISE EXCEPTION 'runyard: unique_for must be greater than zero and at most 100 years, got %',
                submit.unique_for
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF submit.concurrency IS NOT NULL THEN
        IF submit.concurrency_key IS NULL THEN
            RAISE EXCEPTION 'runyard: concurrency limits the jobs of a concurrency_key, and this '
                            'job has none'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A task''s limit is stored with runyard limit --task TASK.';
        ELSIF submit.concurrency < 1 THEN
            RAISE EXCEPTION 'runyard: concurrency must be >= 1, got %', submit.concurrency
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'To stop a task, pause it: runyard task pause TASK.';
        END IF;
    END IF;
    IF submit.concurrency_key IS NOT NULL THEN
        IF position(':' IN submit.concurrency_key) > 0 THEN
            v_ckn := split_part(submit.concurrency_key, ':', 1);
            v_ckv := substr(submit.concurrency_key, length(v_ckn) + 2);
            IF v_ckv = '' THEN
                RAISE EXCEPTION 'runyard: concurrency_key "%" has an empty value after ":" '
                                '(write "%" for a key without one)', submit.concurrency_key, v_ckn
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSE
            v_ckn := submit.concurrency_key;
        END IF;
        IF v_ckn !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
            RAISE EXCEPTION 'runyard: concurrency_key "%": a key''s name is 1 to 64 letters, '
                            'digits, "_", "-" and "." (a key is NAME or NAME:VALUE, e.g. '
                            'tenant:42)', submit.concurrency_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF octet_length(submit.concurrency_key) > 200 THEN
            RAISE EXCEPTION 'runyard: concurrency_key is at most 200 bytes, name and value '
                            'together, got %', octet_length(submit.concurrency_key)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_ckv ~ '[[:cntrl:]]' THEN
            RAISE EXCEPTION 'runyard: concurrency_key "%": a key''s value must not hold control '
                            'characters', submit.concurrency_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    v_run_at := coalesce((extract(epoch FROM submit.run_at) * 1000000)::bigint, v_now);
    v_limited := d.task_conc IS NOT NULL OR d.task_rate_n IS NOT NULL
                 OR submit.concurrency_key IS NOT NULL;
    IF v_limited THEN
        -- From now on every claim is the limited one (see src/limits.rs).
        INSERT INTO runyard.meta (key, value) VALUES ('flow', 'on') ON CONFLICT DO NOTHING;
    END IF;
    -- An idempotency key already in the queue names its job.
    IF submit.idempotency_key IS NOT NULL THEN
        SELECT j.id INTO v_id FROM runyard.jobs j WHERE j.idempotency_key = submit.idempotency_key;
        IF FOUND THEN
            RETURN v_id;
        END IF;
    END IF;
    -- A unique key: its waiting or blocked holder, else (with unique_for)
    -- a job with it that succeeded within the window, is the answer. The
    -- lock is the key's bucket, as sql/lock_unique.sql computes it.
    IF submit.unique_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(
            hashtext((SELECT c.relnamespace::regnamespace::text FROM pg_class c
                      WHERE c.oid = 'runyard.jobs'::regclass)),
            hashtext(submit.unique_key) & 127);
        SELECT j.id INTO v_id FROM runyard.jobs j
        WHERE j.unique_key = submit.unique_key AND j.finished_at IS NULL
          AND j.state IN ({WAITING}, {BLOCKED})
        ORDER BY j.id LIMIT 1 FOR UPDATE;
        IF FOUND THEN
            IF v_conflict = 'replace' THEN
                UPDATE runyard.jobs j SET params = v_params, run_at = v_run_at,
                    tag = CASE WHEN v_run_at > v_now THEN NULL ELSE j.tag END
                WHERE j.id = v_id;
            END IF;
            RETURN v_id;
        END IF;
        IF submit.unique_for IS NOT NULL THEN
            SELECT j.id INTO v_id FROM runyard.jobs j
            WHERE j.unique_key = submit.unique_key AND j.state = {SUCCEEDED}
              AND j.finished_at >= v_now - runyard.interval_us(submit.unique_for)
            ORDER BY j.finished_at DESC, j.id DESC LIMIT 1;
            IF FOUND THEN
                RETURN v_id;
            END IF;
        END IF;
    END IF;
    -- A due job's fair tag: its fairness key's next, or the keyless group's.
    IF v_run_at <= v_now THEN
        IF v_ckn IS NOT NULL THEN
            v_front := runyard.frontier();
            INSERT INTO runyard.key_tags AS t (key, last)
            VALUES (v_ckn || ':' || v_ckv, v_front)
            ON CONFLICT (key) DO UPDATE SET last = GREATEST(t.last + 1, v_front)
            RETURNING t.last INTO v_tag;
        ELSE
            v_tag := runyard.keyless_tags(1, runyard.frontier());
            PERFORM setval('runyard.tag_next', v_tag + 1) FROM runyard.tag_next s
            WHERE v_tag + 1 > s.last_value;
        END IF;
    END IF;
    INSERT INTO runyard.jobs AS j
        (task, params, state, priority, run_at, enqueued_at, max_attempts, attempts_per_round,
         backoff, timeout_us, mode, isolate, idempotency_key, tag, unique_key, task_conc,
         task_rate_n, task_rate_us, ckey_name, ckey_value, ckey_conc)
    VALUES (submit.task, v_params, {WAITING}, coalesce(submit.priority, d.priority), v_run_at,
            v_now, coalesce(submit.max_attempts, d.max_attempts),
            coalesce(submit.max_attempts, d.max_attempts), d.backoff,
            coalesce(v_timeout, d.timeout_us), d.mode, d.isolate, submit.idempotency_key, v_tag,
            submit.unique_key, d.task_conc, d.task_rate_n, d.task_rate_us, v_ckn,
            CASE WHEN v_ckn IS NOT NULL THEN v_ckv END, submit.concurrency)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING j.id INTO v_id;
    IF v_id IS NULL THEN
        -- Another transaction added the key meanwhile, and committed.
        SELECT j.id INTO v_id FROM runyard.jobs j WHERE j.idempotency_key = submit.idempotency_key;
    END IF;
    RETURN v_id;
END
$$;
