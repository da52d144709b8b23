-- Job $1, locked: its state code and run_if.
SELECT state, run_if FROM runyard.jobs WHERE id = $1 FOR UPDATE
