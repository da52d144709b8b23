-- The first of $1 consecutive tags for due jobs without a fairness key:
-- after the keyless group's last tag, never below the frontier.
SELECT runyard.keyless_tags($1::bigint, runyard.frontier())
