//! Output: what people read ([`human`]), the progress bar ([`progress`])
//! and the report writer of `--json` and `--events` ([`report`]).

pub(crate) mod human;
pub(crate) mod progress;
pub(crate) mod report;
