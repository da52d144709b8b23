-- runyard queue schema, version 7: the limited claim at speed
-- (docs/backends.md §8).
--
-- The claim's window is read once, in fair order, with each job's
-- concurrency key (its counter's target) and that key's limit (stored
-- limits joined in the same read, and not looked for while none is
-- stored). A job that carries nothing but a concurrency key (or nothing
-- at all) is claimed set-based, a constant number of statements per
-- claim whatever its size: the missing counters are created, the
-- counters of the window's keys locked at once (`FOR UPDATE SKIP LOCKED`;
-- those found full without a lock are passed over and stay free for the
-- completions that give slots back), each key gives its first
-- (limit - running) jobs in fair order, those rows are locked (`SKIP
-- LOCKED`), claimed, and their counters moved on, one statement each.
-- Jobs with a task limit or a rate (carried or stored), and the jobs that
-- share a task or a key with one of those in the window, take the careful
-- path of version 5, job by job in the same walk; the two never share a
-- counter within a claim. Either way a key's counter is locked by the
-- claim that takes its slots, so concurrent claims never run more than
-- the limit.

CREATE OR REPLACE FUNCTION runyard.claim_limited(p_worker text, p_until bigint, p_now bigint,
                                                 p_max integer, p_tasks text[],
                                                 p_window integer, p_db_clock boolean)
RETURNS TABLE (out_id bigint, out_admitted bigint) LANGUAGE plpgsql AS $$
DECLARE
    v_now    bigint := CASE WHEN p_db_clock
                            THEN (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                            ELSE p_now END;
    v_front  bigint;
    v_all    boolean;
    v_paused text[];
    v_stored boolean;
    -- The window, in fair order: id, counter target, limit, careful.
    w_id     bigint[];
    w_tgt    text[];
    w_lim    integer[];
    w_care   boolean[];
    w_miss   boolean[];
    v_care   boolean;
    -- The set-based path: counters locked (target, running), the jobs
    -- that may take a slot (position in the window), the jobs chosen and
    -- those locked and claimed.
    k_tgt    text[];
    k_n      integer[];
    e_ord    bigint[];
    e_id     bigint[];
    pick     bigint[] := ARRAY[]::bigint[];
    got      bigint[];
    si       integer := 1;
    w        integer;
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
    -- Targets found full (or held by another claim) on the careful path:
    -- the jobs after them that need them are passed over without a query.
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
    v_stored := EXISTS (SELECT 1 FROM runyard.limits);
    -- The window: a job is careful when it carries a task limit or a rate,
    -- or a stored limit holds its task, or it shares a task or a key with
    -- a careful job of the window.
    SELECT array_agg(z.id ORDER BY z.ord), array_agg(z.tgt ORDER BY z.ord),
           array_agg(z.lim ORDER BY z.ord), array_agg(z.care ORDER BY z.ord),
           array_agg(z.missing ORDER BY z.ord), coalesce(bool_or(z.care), false)
    INTO w_id, w_tgt, w_lim, w_care, w_miss, v_care
    FROM (
    SELECT x.*, bool_and(x.fits) OVER (PARTITION BY x.tgt ORDER BY x.ord) AS pfits
    FROM (
        SELECT y.id, y.ord, y.tgt, y.lim, (y.tgt IS NOT NULL AND k.target IS NULL) AS missing,
               (bool_or(y.own) OVER (PARTITION BY y.task)
                OR (y.tgt IS NOT NULL AND bool_or(y.own) OVER (PARTITION BY y.tgt))) AS care,
               (y.lim IS NULL
                OR row_number() OVER (PARTITION BY y.tgt ORDER BY y.ord)
                   <= y.lim - coalesce(k.n, 0)) AS fits
        FROM (
            SELECT c.id, c.task, row_number() OVER (ORDER BY c.priority DESC, c.tag, c.id) AS ord,
                   CASE WHEN c.ckey_name IS NOT NULL
                        THEN 'k:' || c.ckey_name || ':' || c.ckey_value END AS tgt,
                   CASE WHEN c.ckey_name IS NULL THEN NULL
                        WHEN v_stored THEN
                            coalesce((SELECT l.concurrency FROM runyard.limits l
                                      WHERE l.kind = 1 AND l.name = c.ckey_name
                                        AND l.value = c.ckey_value),
                                     (SELECT l.concurrency FROM runyard.limits l
                                      WHERE l.kind = 1 AND l.name = c.ckey_name
                                        AND l.value = ''),
                                     c.ckey_conc)
                        ELSE c.ckey_conc END AS lim,
                   (c.task_conc IS NOT NULL OR c.task_rate_n IS NOT NULL
                    OR c.rkey_name IS NOT NULL
                    OR (v_stored AND EXISTS (SELECT 1 FROM runyard.limits l
                                             WHERE l.kind = 0 AND l.name = c.task))) AS own
            FROM (SELECT c.id, c.task, c.priority, c.tag, c.task_conc, c.task_rate_n,
                         c.ckey_name, c.ckey_value, c.ckey_conc, c.rkey_name
                  FROM runyard.jobs c
                  WHERE c.state = {WAITING} AND c.tag IS NOT NULL
                    AND (p_tasks IS NULL OR c.task = ANY(p_tasks))
                    AND (v_paused IS NULL OR NOT (c.task = ANY(v_paused)))
                  ORDER BY c.priority DESC, c.tag, c.id
                  LIMIT p_window) c
        ) y
        LEFT JOIN runyard.running k ON k.target = y.tgt
    ) x
    ) z
    -- A key's jobs past those its free slots (read without a lock) could
    -- take are left out of the claim's work: they are a suffix of the
    -- key's jobs in the window, so the rest keep their ranks.
    WHERE z.care OR z.tgt IS NULL OR z.pfits;
    IF w_id IS NULL THEN
        RETURN;
    END IF;
    -- Set-based: the counters of the keys of the window's other jobs,
    -- created when missing, then locked at once (a key whose first job
    -- finds it full without a lock is not locked).
    IF EXISTS (SELECT 1 FROM unnest(w_tgt, w_care) AS u(t, cf) WHERE u.t IS NOT NULL AND NOT u.cf)
    THEN
        INSERT INTO runyard.running (target, n)
        SELECT DISTINCT u.t, 0 FROM unnest(w_tgt, w_care, w_miss) AS u(t, cf, miss)
        WHERE u.miss AND NOT u.cf
        ORDER BY 1
        ON CONFLICT DO NOTHING;
        SELECT array_agg(k.target), array_agg(k.n) INTO k_tgt, k_n
        FROM (SELECT x.target, x.n
              FROM runyard.running x
              JOIN (SELECT DISTINCT ON (u.t) u.t, u.l
                    FROM unnest(w_tgt, w_lim, w_care) WITH ORDINALITY AS u(t, l, cf, o)
                    WHERE u.t IS NOT NULL AND NOT u.cf
                    ORDER BY u.t, u.o) f ON f.t = x.target
              WHERE f.l IS NULL OR x.n < f.l
              ORDER BY x.target
              FOR UPDATE OF x SKIP LOCKED) k;
    END IF;
    -- Each key gives its first jobs while each of them finds a free slot
    -- (running + the jobs before it < its limit, as the careful path counts);
    -- a job without a key needs none.
    SELECT array_agg(e.o ORDER BY e.o), array_agg(e.id ORDER BY e.o) INTO e_ord, e_id
    FROM (SELECT z.o, z.id, bool_and(z.fits) OVER (PARTITION BY z.t ORDER BY z.o) AS fits
          FROM (SELECT u.o, u.id, u.t,
                       (u.t IS NULL OR u.l IS NULL
                        OR row_number() OVER (PARTITION BY u.t ORDER BY u.o) <= u.l - k.n) AS fits
                FROM unnest(w_id, w_tgt, w_lim, w_care) WITH ORDINALITY AS u(id, t, l, cf, o)
                LEFT JOIN unnest(k_tgt, k_n) AS k(t, n) ON k.t = u.t
                WHERE NOT u.cf AND (u.t IS NULL OR k.t IS NOT NULL)) z) e
    WHERE e.fits;
    IF NOT v_care THEN
        pick := coalesce(e_id[1:p_max], pick);
    ELSE
    -- Careful jobs in the window: one walk in fair order, the set-based
    -- jobs counted as they come, the careful ones admitted one by one.
    FOR w IN 1..array_length(w_id, 1) LOOP
        EXIT WHEN taken >= p_max;
        IF NOT w_care[w] THEN
            IF si <= coalesce(array_length(e_ord, 1), 0) AND e_ord[si] = w THEN
                pick := pick || e_id[si];
                si := si + 1;
                taken := taken + 1;
            END IF;
            CONTINUE;
        END IF;
        SELECT c.id, c.task, c.task_conc, c.task_rate_n, c.task_rate_us, c.ckey_name,
               c.ckey_value, c.ckey_conc, c.rkey_name, c.rkey_value, c.rkey_rate_n,
               c.rkey_rate_us
        INTO r FROM runyard.jobs c WHERE c.id = w_id[w];
        CONTINUE WHEN NOT FOUND;
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
    END IF;
    IF coalesce(array_length(pick, 1), 0) = 0 THEN
        RETURN;
    END IF;
    -- The walk read without locking; the jobs chosen are locked now, and
    -- passed over if another claim has one or took it meanwhile. (The
    -- state test is a CASE so that the rows are found by primary key, not
    -- by a scan of the fair order's index, whose predicate it would match.)
    SELECT array_agg(z.id) INTO got
    FROM (SELECT j.id FROM runyard.jobs j
          WHERE j.id = ANY(pick)
            AND CASE WHEN j.state = {WAITING} THEN j.tag IS NOT NULL ELSE false END
          ORDER BY j.id FOR UPDATE SKIP LOCKED) z;
    IF got IS NULL THEN
        RETURN;
    END IF;
    UPDATE runyard.jobs j
    SET state = {RUNNING}, attempt = j.attempt + 1, claims = j.claims + 1, worker = p_worker,
        lease_until = p_until, claimed_at = p_now, started = false,
        held = CASE WHEN j.ckey_name IS NOT NULL
                    THEN ARRAY['k:' || j.ckey_name || ':' || j.ckey_value]
                    ELSE ARRAY[]::text[] END,
        admitted_at = NULL
    WHERE j.id = ANY(got);
    UPDATE runyard.running x SET n = x.n + g.c
    FROM (SELECT u.t, count(*)::integer AS c
          FROM unnest(w_id, w_tgt) AS u(id, t) JOIN unnest(got) AS g(id) ON g.id = u.id
          WHERE u.t IS NOT NULL GROUP BY u.t) g
    WHERE x.target = g.t;
    RETURN QUERY SELECT g.id, NULL::bigint FROM unnest(got) AS g(id);
END
$$;
