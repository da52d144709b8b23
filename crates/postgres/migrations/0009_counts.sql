-- runyard queue schema, version 9: the number of jobs of each task in each
-- state, kept as jobs are inserted, change state or task, and are deleted,
-- so that counting them (`runyard status`, `runyard serve`) reads a few rows
-- rather than every job. Two splits are still counted from the jobs, each
-- over an index and only over the jobs it names: waiting jobs whose run-at
-- is ahead (all untagged: a job gets its tag once due), and running jobs
-- whose attempt has not started.
--
-- One row per (task, state) would be a hot row that every worker's claim
-- and completion waits on. So each connection adds its changes to rows of
-- its own, `shard` = its backend's pid: no two live connections ever write
-- the same row, and a count is the sum over the shards. Rows of backends
-- that ended are folded into shard 0 by `runyard.fold_counts()` (called by
-- prune and when a worker registers).
--
-- The triggers are statement-level, over transition tables: a claim or a
-- completion of a batch adds one row per (task, state) it changed, not one
-- per job, and a statement that changes no state or task (a heartbeat)
-- adds nothing. They run in the statement's transaction: a count never
-- disagrees with the jobs, even across a crash.
LOCK TABLE runyard.jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE runyard.counts (
    task  text     NOT NULL,
    state smallint NOT NULL,
    shard integer  NOT NULL,
    n     bigint   NOT NULL,
    PRIMARY KEY (task, state, shard)
);

INSERT INTO runyard.counts (task, state, shard, n)
SELECT task, state, 0, COUNT(*) FROM runyard.jobs GROUP BY task, state;

CREATE FUNCTION runyard.count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO runyard.counts AS c (task, state, shard, n)
        SELECT task, state, pg_backend_pid(), COUNT(*) FROM new_jobs
        GROUP BY task, state ORDER BY task, state
        ON CONFLICT (task, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO runyard.counts AS c (task, state, shard, n)
        SELECT task, state, pg_backend_pid(), -COUNT(*) FROM old_jobs
        GROUP BY task, state ORDER BY task, state
        ON CONFLICT (task, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO runyard.counts AS c (task, state, shard, n)
        SELECT task, state, pg_backend_pid(), SUM(d) FROM (
            SELECT task, state, 1 AS d FROM new_jobs
            UNION ALL
            SELECT task, state, -1 AS d FROM old_jobs
        ) moved
        GROUP BY task, state HAVING SUM(d) <> 0 ORDER BY task, state
        ON CONFLICT (task, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER counts_insert AFTER INSERT ON runyard.jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION runyard.count_jobs();
CREATE TRIGGER counts_update AFTER UPDATE ON runyard.jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION runyard.count_jobs();
CREATE TRIGGER counts_delete AFTER DELETE ON runyard.jobs
    REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION runyard.count_jobs();

-- Folds the shards of backends that have ended into shard 0, and drops
-- rows that count nothing. A live backend's rows are left to it.
CREATE FUNCTION runyard.fold_counts() RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM runyard.counts c
        WHERE c.shard <> 0
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.shard)
        RETURNING task, state, n
    )
    INSERT INTO runyard.counts AS c (task, state, shard, n)
    SELECT task, state, 0, SUM(n) FROM gone GROUP BY task, state ORDER BY task, state
    ON CONFLICT (task, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    DELETE FROM runyard.counts WHERE shard = 0 AND n = 0;
$$;
