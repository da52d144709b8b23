-- The earliest run-at of the waiting jobs: of those without a tag, or of
-- any with one (a tagged job is due, so any of them is not after now).
-- With 256 or fewer waiting (by the kept counts), read from the newest end
-- of the state index, as claim.sql does and for the same reason: the heads
-- of `jobs_due` and `jobs_fair` may be long runs of entries of jobs no
-- longer waiting.
WITH w AS MATERIALIZED (
    SELECT coalesce(sum(c.n), 0)::bigint AS n FROM runyard.counts c WHERE c.state = {WAITING}
)
SELECT CASE
    WHEN (SELECT n FROM w) = 0 THEN NULL
    WHEN (SELECT n FROM w) <= {FEW} THEN
        (SELECT MIN(u.run_at) FROM (SELECT v.run_at FROM runyard.jobs v WHERE v.state = {WAITING}
                                    ORDER BY v.id DESC LIMIT (SELECT n FROM w)) u)
    ELSE LEAST(
        (SELECT MIN(run_at) FROM runyard.jobs WHERE state = {WAITING} AND tag IS NULL),
        (SELECT run_at FROM runyard.jobs WHERE state = {WAITING} AND tag IS NOT NULL LIMIT 1))
END
