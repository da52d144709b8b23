-- Running jobs whose lease ended before ?1, with what rescuing them needs.
SELECT id, attempt, max_attempts, worker, claimed_at, run_at, started, lost_claims, children
FROM runyard_jobs WHERE state = {RUNNING} AND lease_until < ?1 ORDER BY id
