-- Whether some waiting job is due at ?1 and has no tag yet.
SELECT EXISTS (SELECT 1 FROM runyard_jobs WHERE state = {WAITING} AND tag IS NULL AND run_at <= ?1)
