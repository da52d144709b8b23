-- Running jobs leased by worker $1, locked, with what rescuing them needs.
SELECT id, attempt, max_attempts, worker, claimed_at, run_at, started, lost_claims FROM runyard.jobs WHERE state = {RUNNING} AND worker = $1
ORDER BY id FOR UPDATE SKIP LOCKED
