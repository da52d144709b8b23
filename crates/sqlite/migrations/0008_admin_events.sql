-- runyard state file, schema version 8: the record of operators' actions
-- (`runyard serve`'s retry, cancel, delete, pause, limits and schedules,
-- `runyard retry` and `runyard cancel`): what, which jobs (a JSON array of
-- ids), the rest as JSON, when, and from where (`api` or `cli`, and the
-- client's address). Read newest first, by id.
CREATE TABLE runyard_events (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    action TEXT    NOT NULL,
    jobs   TEXT    NOT NULL,
    detail TEXT    NOT NULL,
    via    TEXT    NOT NULL,
    client TEXT
);
