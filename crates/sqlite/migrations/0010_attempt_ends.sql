-- runyard state file, schema version 10: attempts by when they ended (their
-- start plus their duration, the expression `runyard serve`'s charts count
-- by), so that the attempts of the last hour are read from this index, not
-- by a scan of every attempt. With the outcome, the count reads the index
-- alone.
CREATE INDEX runyard_attempts_ended ON runyard_attempts (started_at + duration_us, outcome);
