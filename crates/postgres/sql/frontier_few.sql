-- Not a statement: the expression that FRONTIER in braces stands for in the
-- statements of this folder (put in by PgOptions::sql): the frontier, as
-- runyard.frontier() (migration 0005) gives it, with its move of
-- tag_next when nothing waits. While at most 256 jobs wait (by the kept
-- counts of migration 0009, which agree with the jobs in the statement's
-- snapshot), it reads the waiting jobs, and the running ones when as few,
-- from the newest end of the state index rather than from the heads of
-- the fair order's index and of the lease index; otherwise it calls the
-- function. Right after a deep drain those heads are long runs of entries
-- of jobs that have moved on, which every read walks until vacuum removes
-- them; the function's largest running tag is a bitmap scan, which never
-- marks such entries dead, so it read all of them, with their heap pages,
-- on every insert into an idle queue (about 0.3 s with 10^6 drained).
(SELECT CASE
    WHEN k.waiting > {FEW} THEN runyard.frontier()
    ELSE coalesce(
        (SELECT u.tag FROM (SELECT v.priority, v.tag, v.id FROM runyard.jobs v
                            WHERE v.state = {WAITING} ORDER BY v.id DESC LIMIT k.waiting) u
         WHERE u.tag IS NOT NULL ORDER BY u.priority DESC, u.tag, u.id LIMIT 1),
        (SELECT setval('runyard.tag_next', g.v + 1) - 1 FROM (SELECT GREATEST(
             (SELECT max(t.last) + 1 FROM runyard.key_tags t),
             CASE WHEN k.running = 0 THEN NULL
                  WHEN k.running <= {FEW} THEN
                      (SELECT max(u.tag) + 1 FROM (SELECT v.tag FROM runyard.jobs v
                                                   WHERE v.state = {RUNNING}
                                                   ORDER BY v.id DESC LIMIT k.running) u)
                  ELSE (SELECT max(r.tag) + 1 FROM runyard.jobs r WHERE r.state = {RUNNING}) END,
             (SELECT s.last_value FROM runyard.tag_next s)) AS v) g))
    END
 FROM (SELECT coalesce(sum(c.n) FILTER (WHERE c.state = {WAITING}), 0)::bigint AS waiting,
              coalesce(sum(c.n) FILTER (WHERE c.state = {RUNNING}), 0)::bigint AS running
       FROM runyard.counts c) k)
