-- runyard queue schema, version 5: flow control (docs/backends.md §8).
--
-- A job carries its unique key and its limits: its task's concurrency and
-- rate (a rate as a count per window of `_us` microseconds), its
-- concurrency key (name, value: '' for a key without one) with the limit
-- it gives each value, and its rate key with its rate. `tag` is its place
-- in the fair order (NULL while it is not due: the first limited claim
-- after its run-at gives it the frontier). `held` names the counters
-- (rows of `running`) its claim took a slot of: whatever moves it out of
-- running gives those back, in the same transaction. `admitted_at` is the
-- start a rate admitted (the database's clock).
ALTER TABLE runyard.jobs
    ADD COLUMN unique_key   text,
    ADD COLUMN task_conc    integer,
    ADD COLUMN task_rate_n  integer,
    ADD COLUMN task_rate_us bigint,
    ADD COLUMN ckey_name    text,
    ADD COLUMN ckey_value   text,
    ADD COLUMN ckey_conc    integer,
    ADD COLUMN rkey_name    text,
    ADD COLUMN rkey_value   text,
    ADD COLUMN rkey_rate_n  integer,
    ADD COLUMN rkey_rate_us bigint,
    ADD COLUMN tag          bigint,
    ADD COLUMN held         text[],
    ADD COLUMN admitted_at  bigint;

-- Due jobs with a tag are in the fair order (every claim takes them by
-- priority, tag, id: `jobs_fair` replaces `jobs_ready`); those without
-- one (not due when added, or retried) wait in `jobs_due` to be given one.
DROP INDEX runyard.jobs_due;
DROP INDEX runyard.jobs_ready;
CREATE INDEX jobs_due ON runyard.jobs (run_at) WHERE state = {WAITING} AND tag IS NULL;
CREATE INDEX jobs_fair ON runyard.jobs (priority DESC, tag, id) WHERE state = {WAITING} AND tag IS NOT NULL;
CREATE INDEX jobs_unique ON runyard.jobs (unique_key, finished_at) WHERE unique_key IS NOT NULL;

-- Stored limits (`runyard limit`): kind 0 a task (`name`), kind 1 a key's
-- name with one value, or with '' for every value.
CREATE TABLE runyard.limits (
    kind        smallint NOT NULL,
    name        text     NOT NULL,
    value       text     NOT NULL DEFAULT '',
    concurrency integer,
    rate_n      integer,
    rate_us     bigint,
    PRIMARY KEY (kind, name, value)
);

-- Paused tasks; the task '' pauses every task.
CREATE TABLE runyard.paused (
    task text PRIMARY KEY
);

-- The last tag given to each fairness key (`name:value`).
CREATE TABLE runyard.key_tags (
    key  text   PRIMARY KEY,
    last bigint NOT NULL
);

-- A counter per target: `k:NAME:VALUE` counts the running jobs that
-- carry that key; `t:TASK` (whose running jobs are counted from the jobs
-- table while a limit holds the task), `r:t:TASK` and `r:k:NAME:VALUE`
-- are rows a claim locks while it admits a job of that task or a start of
-- that rate.
CREATE TABLE runyard.running (
    target text    PRIMARY KEY,
    n      integer NOT NULL DEFAULT 0
);

-- The starts each rate target admitted (the database's clock); those
-- older than the target's window are deleted as it admits more.
CREATE TABLE runyard.rate_starts (
    target text   NOT NULL,
    at     bigint NOT NULL
);
CREATE INDEX rate_starts_target ON runyard.rate_starts (target, at);

-- One more than the largest tag given so far, as far as the tags that
-- are no longer kept go: moved on by each insert that tags jobs and by
-- each frontier read while nothing waits (a sequence: no row that
-- submitters wait on).
CREATE SEQUENCE runyard.tag_next MINVALUE 0 START 0;

-- The next tag of the group of the jobs without a fairness key (its last
-- tag + 1): a sequence, not a `key_tags` row, so that a keyless insert
-- holds no lock until its commit (see runyard.keyless_tags).
CREATE SEQUENCE runyard.keyless_next MINVALUE 0 START 0;

-- Reserves p_n consecutive tags for the due keyless jobs of one insert,
-- whose frontier is p_front, and returns the first: max(last('') + 1,
-- p_front), the group's last tag moving to the last of them. The read and
-- the move are one step under a session-level advisory lock held only for
-- this call (a sequence change is seen by every session at once, and
-- outlives a rollback: a batch rolled back leaves a gap, never a tag given
-- twice), so concurrent submitters wait on each other for microseconds,
-- not for their whole insert, and a batch that starts after another
-- committed gets tags after that one's: keyless batches stay first in,
-- first out.
CREATE FUNCTION runyard.keyless_tags(p_n bigint, p_front bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    IF p_n <= 0 THEN
        RETURN p_front;
    END IF;
    PERFORM pg_advisory_lock(hashtext('runyard.keyless_next')::bigint);
    BEGIN
        SELECT CASE WHEN q.is_called THEN q.last_value + 1 ELSE q.last_value END
        INTO s FROM runyard.keyless_next q;
        s := GREATEST(s, p_front);
        PERFORM setval('runyard.keyless_next', s + p_n - 1, true);
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(hashtext('runyard.keyless_next')::bigint);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(hashtext('runyard.keyless_next')::bigint);
    RETURN s;
END
$$;

-- The frontier of the fair order: the smallest tag among the due, waiting
-- jobs at the top priority, or, when none waits, one more than the
-- largest tag given so far (of any key, of a running job, or `tag_next`).
CREATE FUNCTION runyard.frontier() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    SELECT f.tag INTO v FROM runyard.jobs f WHERE f.state = {WAITING} AND f.tag IS NOT NULL
    ORDER BY f.priority DESC, f.tag, f.id LIMIT 1;
    IF v IS NOT NULL THEN
        RETURN v;
    END IF;
    v := GREATEST((SELECT max(k.last) + 1 FROM runyard.key_tags k),
                  (SELECT max(r.tag) + 1 FROM runyard.jobs r WHERE r.state = {RUNNING}),
                  (SELECT s.last_value FROM runyard.tag_next s));
    PERFORM setval('runyard.tag_next', v + 1);
    RETURN v;
END
$$;

-- The limited claim: up to p_max due jobs (of the tasks p_tasks unless it
-- is NULL) for worker p_worker, leased until p_until, at p_now (the
-- database's clock instead when p_db_clock). Gives the due untagged jobs
-- the frontier, then walks at most p_window waiting jobs in fair order
-- (priority DESC, tag, id), skipping rows and counters other claims hold,
-- jobs of paused tasks and jobs whose limits are full; takes a slot of
-- each concurrency target and a start of each rate target of those it
-- claims. Returns the claimed ids and, for a rate-limited one, the start
-- admitted.
CREATE FUNCTION runyard.claim_limited(p_worker text, p_until bigint, p_now bigint,
                                      p_max integer, p_tasks text[], p_window integer,
                                      p_db_clock boolean)
RETURNS TABLE (out_id bigint, out_admitted bigint) LANGUAGE plpgsql AS $$
DECLARE
    v_now    bigint := CASE WHEN p_db_clock
                            THEN (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                            ELSE p_now END;
    v_front  bigint;
    v_all    boolean;
    v_paused text[];
    r        record;
    taken    integer := 0;
    lim      integer;
    rn       integer;
    rus      bigint;
    cur      integer;
    t        text;
    conc     text[];
    rt       text[];
    rt_us    bigint[];
    ok       boolean;
    i        integer;
    -- Targets found full (or held by another claim) in this claim: the
    -- jobs after them that need them are passed over without a query.
    v_full   jsonb := '{}';
BEGIN
    SELECT coalesce(bool_or(p.task = ''), false), array_agg(p.task) INTO v_all, v_paused
    FROM runyard.paused p;
    IF v_all THEN
        RETURN;
    END IF;
    -- The frontier is read only when a job becomes due: on an empty queue
    -- reading it takes a tag.
    IF EXISTS (SELECT 1 FROM runyard.jobs u
               WHERE u.state = {WAITING} AND u.tag IS NULL AND u.run_at <= v_now) THEN
        v_front := runyard.frontier();
        UPDATE runyard.jobs j SET tag = v_front WHERE j.id = ANY(ARRAY(
            SELECT u.id FROM runyard.jobs u
            WHERE u.state = {WAITING} AND u.tag IS NULL AND u.run_at <= v_now
            ORDER BY u.run_at, u.id LIMIT 10000 FOR UPDATE SKIP LOCKED));
    END IF;
    FOR r IN
        SELECT c.id, c.task, c.task_conc, c.task_rate_n, c.task_rate_us, c.ckey_name,
               c.ckey_value, c.ckey_conc, c.rkey_name, c.rkey_value, c.rkey_rate_n,
               c.rkey_rate_us
        FROM runyard.jobs c
        WHERE c.state = {WAITING} AND c.tag IS NOT NULL
          AND (p_tasks IS NULL OR c.task = ANY(p_tasks))
          AND (v_paused IS NULL OR NOT (c.task = ANY(v_paused)))
        ORDER BY c.priority DESC, c.tag, c.id
        LIMIT p_window
    LOOP
        EXIT WHEN taken >= p_max;
        ok := true;
        conc := ARRAY[]::text[];
        rt := ARRAY[]::text[];
        rt_us := ARRAY[]::bigint[];
        -- Concurrency: the task's (when a limit holds it) and the key's.
        FOR i IN 1..2 LOOP
            IF i = 1 THEN
                lim := coalesce((SELECT l.concurrency FROM runyard.limits l
                                 WHERE l.kind = 0 AND l.name = r.task AND l.value = ''),
                                r.task_conc);
                t := CASE WHEN lim IS NOT NULL THEN 't:' || r.task END;
            ELSIF r.ckey_name IS NOT NULL THEN
                IF v_full ? ('k:' || r.ckey_name || ':' || r.ckey_value) THEN
                    ok := false;
                    EXIT;
                END IF;
                lim := coalesce((SELECT l.concurrency FROM runyard.limits l
                                 WHERE l.kind = 1 AND l.name = r.ckey_name
                                   AND l.value = r.ckey_value),
                                (SELECT l.concurrency FROM runyard.limits l
                                 WHERE l.kind = 1 AND l.name = r.ckey_name AND l.value = ''),
                                r.ckey_conc);
                t := 'k:' || r.ckey_name || ':' || r.ckey_value;
            ELSE
                t := NULL;
            END IF;
            CONTINUE WHEN t IS NULL;
            IF v_full ? t THEN
                ok := false;
                EXIT;
            END IF;
            -- A key found full without a lock is passed over: its counter
            -- row stays free for the completions that give slots back.
            IF i = 2 AND lim IS NOT NULL THEN
                SELECT x.n INTO cur FROM runyard.running x WHERE x.target = t;
                IF FOUND AND cur >= lim THEN
                    v_full := v_full || jsonb_build_object(t, true);
                    ok := false;
                    EXIT;
                END IF;
            END IF;
            SELECT x.n INTO cur FROM runyard.running x WHERE x.target = t FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                INSERT INTO runyard.running (target, n) VALUES (t, 0) ON CONFLICT DO NOTHING;
                SELECT x.n INTO cur FROM runyard.running x WHERE x.target = t
                FOR UPDATE SKIP LOCKED;
            END IF;
            IF FOUND AND i = 1 THEN
                -- A task's running jobs are counted, under its row's lock,
                -- whenever a limit holds it (none is kept while none does).
                SELECT count(*) INTO cur FROM runyard.jobs x
                WHERE x.state = {RUNNING} AND x.task = r.task;
            END IF;
            IF NOT FOUND OR (lim IS NOT NULL AND cur >= lim) THEN
                v_full := v_full || jsonb_build_object(t, true);
                ok := false;
                EXIT;
            END IF;
            IF i = 2 THEN
                conc := conc || t;
            END IF;
        END LOOP;
        CONTINUE WHEN NOT ok;
        -- Rates: the task's and the key's, as a sliding window each.
        FOR i IN 1..2 LOOP
            rn := NULL;
            IF i = 1 THEN
                SELECT l.rate_n, l.rate_us INTO rn, rus FROM runyard.limits l
                WHERE l.kind = 0 AND l.name = r.task AND l.value = '' AND l.rate_n IS NOT NULL;
                IF rn IS NULL THEN
                    rn := r.task_rate_n;
                    rus := r.task_rate_us;
                END IF;
                t := 'r:t:' || r.task;
            ELSIF r.rkey_name IS NOT NULL THEN
                SELECT l.rate_n, l.rate_us INTO rn, rus FROM runyard.limits l
                WHERE l.kind = 1 AND l.name = r.rkey_name AND l.value IN (r.rkey_value, '')
                  AND l.rate_n IS NOT NULL
                ORDER BY l.value DESC LIMIT 1;
                IF rn IS NULL THEN
                    rn := r.rkey_rate_n;
                    rus := r.rkey_rate_us;
                END IF;
                t := 'r:k:' || r.rkey_name || ':' || r.rkey_value;
            END IF;
            CONTINUE WHEN rn IS NULL;
            IF v_full ? t THEN
                ok := false;
                EXIT;
            END IF;
            PERFORM 1 FROM runyard.running x WHERE x.target = t FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                INSERT INTO runyard.running (target, n) VALUES (t, 0) ON CONFLICT DO NOTHING;
                PERFORM 1 FROM runyard.running x WHERE x.target = t FOR UPDATE SKIP LOCKED;
            END IF;
            IF NOT FOUND OR (SELECT count(*) FROM runyard.rate_starts s
                             WHERE s.target = t AND s.at > v_now - rus) >= rn THEN
                v_full := v_full || jsonb_build_object(t, true);
                ok := false;
                EXIT;
            END IF;
            rt := rt || t;
            rt_us := rt_us || rus;
        END LOOP;
        CONTINUE WHEN NOT ok;
        -- The walk read without locking (locking every row it passes over
        -- would write each one); the job taken is locked now, and passed
        -- over if another claim has it or took it meanwhile.
        PERFORM 1 FROM runyard.jobs z
        WHERE z.id = r.id AND z.state = {WAITING} AND z.tag IS NOT NULL
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        FOR i IN 1..coalesce(array_length(conc, 1), 0) LOOP
            UPDATE runyard.running x SET n = x.n + 1 WHERE x.target = conc[i];
        END LOOP;
        FOR i IN 1..coalesce(array_length(rt, 1), 0) LOOP
            DELETE FROM runyard.rate_starts s WHERE s.target = rt[i] AND s.at <= v_now - rt_us[i];
            INSERT INTO runyard.rate_starts (target, at) VALUES (rt[i], v_now);
        END LOOP;
        UPDATE runyard.jobs j
        SET state = {RUNNING}, attempt = j.attempt + 1, claims = j.claims + 1, worker = p_worker,
            lease_until = p_until, claimed_at = p_now, started = false, held = conc,
            admitted_at = CASE WHEN array_length(rt, 1) > 0 THEN v_now END
        WHERE j.id = r.id;
        out_id := r.id;
        out_admitted := CASE WHEN array_length(rt, 1) > 0 THEN v_now END;
        RETURN NEXT;
        taken := taken + 1;
    END LOOP;
END
$$;
