-- The first of $1 consecutive tags for due jobs without a fairness key:
-- after the keyless group's last tag, never below the frontier. NULL when
-- $1 is 0: the frontier is then not read (read while nothing waits, it
-- counts as a tag given, see runyard.frontier).
SELECT CASE WHEN $1::bigint > 0 THEN runyard.keyless_tags($1::bigint, {FRONTIER}) END
