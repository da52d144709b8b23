-- When the oldest job ready at $1 became ready. While at most {FEW} jobs
-- wait (by the kept counts), they are read from the newest end of the
-- state index, as frontier_few.sql reads them: right after a deep drain
-- the heads of the due index and of the fair order's index are runs of
-- entries of jobs that have moved on.
SELECT CASE
    WHEN k.waiting <= {FEW} THEN
        (SELECT MIN(u.run_at) FROM (SELECT v.run_at, v.tag FROM runyard.jobs v
                                    WHERE v.state = {WAITING} ORDER BY v.id DESC LIMIT k.waiting) u
         WHERE u.tag IS NOT NULL OR u.run_at <= $1)
    ELSE LEAST(
        (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NULL AND run_at <= $1),
        (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NOT NULL))
    END
FROM (SELECT coalesce(sum(c.n), 0)::bigint AS waiting FROM runyard.counts c
      WHERE c.state = {WAITING}) k
