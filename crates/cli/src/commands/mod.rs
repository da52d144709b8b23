//! The commands, one file each: its arguments (clap derive) and its
//! `main`, which checks everything it is given before it opens or writes
//! anything (the commands that run jobs in three steps: plan, execute,
//! report) and returns how it ended ([`crate::exit::Exit`]).

pub(crate) mod bench;
pub(crate) mod cancel;
pub(crate) mod child;
pub(crate) mod completions;
pub(crate) mod describe;
pub(crate) mod exec;
pub(crate) mod flow;
mod ids;
pub(crate) mod limit;
pub(crate) mod list;
pub(crate) mod migrate;
pub(crate) mod prune;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod schedule;
pub(crate) mod serve;
pub(crate) mod serve_args;
mod serve_config;
mod settings;
pub(crate) mod status;
pub(crate) mod submit;
pub(crate) mod task;
pub(crate) mod worker;
mod worker_args;
mod worker_config;
