-- runyard state file, schema version 4: workflows, jobs that wait for
-- other jobs (see `runyard_core::workflow`). A job after others is in state
-- 1 (blocked) while `pending` (its parents not yet ended as it needs) is
-- above zero; `cause` is the job whose end cancelled it (the root of a
-- chain). `parents` and `children` count its edges each way, so the paths
-- of plain jobs (claim, complete) know from the row itself that they have
-- nothing to look up.
ALTER TABLE runyard_jobs ADD COLUMN name TEXT;
ALTER TABLE runyard_jobs ADD COLUMN run_if INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runyard_jobs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runyard_jobs ADD COLUMN cause INTEGER;
ALTER TABLE runyard_jobs ADD COLUMN parents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runyard_jobs ADD COLUMN children INTEGER NOT NULL DEFAULT 0;

-- One row per edge: job `child` is after job `parent`, and sees its output
-- under `key` (a list of outputs when `many`); `pos` is the edge's place in
-- the child's list of parents. The key finds a job's parents in order; the
-- index its children.
CREATE TABLE runyard_edges (
    child  INTEGER NOT NULL,
    pos    INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    many   INTEGER NOT NULL,
    PRIMARY KEY (child, pos)
) WITHOUT ROWID;

CREATE INDEX runyard_edges_parent ON runyard_edges (parent, child);
