-- Running jobs leased by worker ?1, with what rescuing them needs.
SELECT id, attempt, max_attempts, worker, claimed_at, run_at, started, lost_claims, children
FROM runyard_jobs WHERE state = {RUNNING} AND worker = ?1 ORDER BY id
