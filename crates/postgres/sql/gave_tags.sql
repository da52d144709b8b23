-- Tags up to $1 were given: the frontier of an empty queue is past them.
SELECT setval('runyard.tag_next', $1::bigint + 1) FROM runyard.tag_next s
WHERE $1::bigint + 1 > s.last_value
