-- runyard queue schema, version 4: workflows. A job may have a name, be
-- after other jobs (an edge per parent, in the order the job named them)
-- and run only once they have ended as its run_if needs (0 success,
-- 1 always). While `pending` (its parents that have not ended so) is above
-- zero it is blocked (state 1); `cause` is the job whose end cancelled it.
-- `children` says that some edge names the job as its parent: it is set,
-- under the parent row's lock, by the transaction that adds the edge, so
-- that whoever ends the parent either sees it or is seen (see
-- `src/flow.rs`), and jobs without children end without a look at the
-- edges.
ALTER TABLE runyard.jobs
    ADD COLUMN name     text,
    ADD COLUMN run_if   smallint NOT NULL DEFAULT 0,
    ADD COLUMN pending  integer  NOT NULL DEFAULT 0,
    ADD COLUMN cause    bigint,
    ADD COLUMN children boolean  NOT NULL DEFAULT false;

CREATE TABLE runyard.edges (
    child    bigint  NOT NULL,
    parent   bigint  NOT NULL,
    -- the parent's output in the child's parents object: under this key,
    -- in a list when `many`
    key      text    NOT NULL,
    many     boolean NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (child, position)
);
CREATE INDEX edges_parent ON runyard.edges (parent, child);
