-- Of the jobs whose ids are in the JSON array ?1, those with jobs after
-- them, by id: one read for a whole batch of ends, so that a batch of
-- plain jobs pays one statement, not one a job.
SELECT id FROM runyard_jobs WHERE id IN (SELECT value FROM json_each(?1)) AND children > 0
