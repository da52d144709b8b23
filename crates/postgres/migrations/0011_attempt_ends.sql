-- runyard queue schema, version 11: attempts by when they ended (their start
-- plus their duration, the expression `runyard serve`'s charts count by),
-- so that the attempts of the last hour are read from this index, not by a
-- scan of every attempt. With the outcome, the count can read the index
-- alone.
CREATE INDEX attempts_ended ON runyard.attempts ((started_at + duration_us), outcome);
