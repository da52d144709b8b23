-- Whether a claim must look at limits: a limit is stored, a task is
-- paused, or a waiting job carries a limit.
SELECT EXISTS (SELECT 1 FROM runyard_limits)
    OR EXISTS (SELECT 1 FROM runyard_paused)
    OR EXISTS (SELECT 1 FROM runyard_jobs WHERE state = {WAITING} AND limited = 1)
