-- runyard queue schema, version 8: what `runyard serve` lists fast, and the
-- record of operators' actions.
--
-- A page of jobs filtered by task and state, or by state alone, is read in
-- id order from an index, not by scanning the table: (task, state, id) and
-- (state, id). They cost every state change a little (an update that
-- moves a job's state was never a HOT update: the claim's partial indexes
-- name the state).
--
-- Each action of `runyard serve` (retry, cancel, delete, pause, limits,
-- schedules) and of `runyard retry` and `runyard cancel`: what, which jobs
-- (a JSON array of ids), the rest as JSON, when, and from where (`api` or
-- `cli`, and the client's address). Read newest first, by id.
CREATE INDEX jobs_task_state ON runyard.jobs (task, state, id);
CREATE INDEX jobs_state ON runyard.jobs (state, id);

CREATE TABLE runyard.events (
    id     bigserial PRIMARY KEY,
    at     bigint NOT NULL,
    action text   NOT NULL,
    jobs   text   NOT NULL,
    detail text   NOT NULL,
    via    text   NOT NULL,
    client text
);
