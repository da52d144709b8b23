//! `runyard serve`'s settings from three places: its flags, the
//! `RUNYARD_SERVE_<KEY>` environment variables, and the TOML file of
//! `--config FILE`, in that order of precedence (docs/api.md, "Settings"),
//! merged by `settings.rs` as a worker's are.
//!
//! Its variables are its own (`RUNYARD_SERVE_QUEUE`, `RUNYARD_SERVE_LISTEN`,
//! ...), so that a worker's `RUNYARD_QUEUE` or `RUNYARD_LISTEN` on the same
//! host never changes what `serve` opens or binds. `RUNYARD_SERVE_TOKEN` is
//! the token itself, not a key (`serve.rs` reads it). All of it is checked
//! before the queue is opened.

use serde::Deserialize;
use toml::Spanned;

use super::serve_args::{parse_listen, ServeArgs};
use super::settings::{self, path_of, Merger};
use crate::exit::UsageError;
use crate::queues::parse_queue_url;

/// What every variable of `serve` starts with.
const PREFIX: &str = "RUNYARD_SERVE_";

/// The keys a file may hold, each with the TOML type it takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queue: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    read_only: Option<Spanned<bool>>,
    token_file: Option<Spanned<String>>,
}

/// Fills each setting the flags left unset from its environment variable,
/// else from the file of `--config`; every value checked.
pub(crate) fn merge(mut args: ServeArgs) -> anyhow::Result<ServeArgs> {
    let loaded = settings::read::<File>(args.config.as_deref())?;
    let empty = File::default();
    let (cfg, f) = match &loaded {
        Some((cfg, f)) => (Some(cfg), f),
        None => (None, &empty),
    };
    let m = Merger::new(PREFIX, cfg);
    let s = settings::text;
    // The queue's variable is read by the flag itself (`RUNYARD_SERVE_QUEUE`).
    m.fill(
        &mut args.queue,
        "queue",
        false,
        s(&f.queue),
        parse_queue_url,
    )?;
    m.fill(&mut args.listen, "listen", true, s(&f.listen), parse_listen)?;
    args.token_from = m.fill(
        &mut args.token_file,
        "token_file",
        true,
        s(&f.token_file),
        path_of,
    )?;
    m.flag(
        &mut args.read_only,
        "read_only",
        settings::shown(&f.read_only),
    )?;
    if args.queue.is_none() {
        return Err(UsageError(format!(
            "a queue is needed: give --queue URL, ${}, or `queue = \"URL\"` in the --config file",
            m.var("queue")
        ))
        .into());
    }
    Ok(args)
}
