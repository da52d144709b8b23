-- Records an operator's action at $1: what ($2), which jobs ($3, a JSON
-- array of ids), its detail ($4, JSON), through what ($5: api or cli) and
-- from which client ($6). Returns its id.
INSERT INTO runyard.events (at, action, jobs, detail, via, client)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id
