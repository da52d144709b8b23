//! `runyard serve`: the JSON API, `/metrics` and the health checks of
//! `runyard-serve` over a queue (PostgreSQL, or a state file that a run or
//! a worker may be writing). Safe by default: loopback only unless a
//! token guards it (docs/api.md). Its settings are merged from its flags,
//! the `RUNYARD_SERVE_<KEY>` variables and `--config FILE` by
//! `serve_config.rs`; its flags are in `serve_args.rs`.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use super::serve_args::{ServeArgs, DEFAULT_LISTEN};
use super::serve_config;
use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::queues::{self, Purpose, QueueUrl};

/// The environment variable that may hold the token.
const TOKEN_ENV: &str = "RUNYARD_SERVE_TOKEN";

/// The token from a token file or the environment, checked. `from` names
/// where the file's path was given (`--token-file`, its variable or the
/// `--config` file), for the messages.
pub(crate) fn token(
    token_file: Option<&Path>,
    from: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let env = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let from = from.unwrap_or("--token-file");
    let token = match (token_file, env) {
        (Some(path), Some(_)) => {
            return Err(UsageError(format!(
                "a token is given twice, by the file {} ({from}) and by ${TOKEN_ENV}: give one",
                path.display()
            ))
            .into())
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!("{from} {}: cannot read it: {e}", path.display()))
            })?;
            let first = text.lines().next().unwrap_or("").trim().to_string();
            runyard_serve::check_token(&first)
                .map_err(|e| UsageError(format!("{from} {}: {e}", path.display())))?;
            Some(first)
        }
        (None, Some(t)) => {
            runyard_serve::check_token(&t).map_err(|e| UsageError(format!("${TOKEN_ENV}: {e}")))?;
            Some(t)
        }
        (None, None) => None,
    };
    Ok(token)
}

pub(crate) fn main(args: ServeArgs) -> anyhow::Result<Exit> {
    let args = serve_config::merge(args)?;
    let url = args.queue.as_ref().expect("merged settings have a queue");
    let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
    url.require_lasting("serve")?;
    let token = token(args.token_file.as_deref(), args.token_from.as_deref())?;
    runyard_serve::check_listen(&listen, token.is_some()).map_err(UsageError)?;
    // Read-only: the queue is read as `status` reads it, nothing created,
    // upgraded or written. Otherwise as `retry` and `cancel` open it.
    let purpose = if args.read_only {
        Purpose::Inspect
    } else {
        Purpose::Change
    };
    let queue: std::sync::Arc<dyn runyard::queue::Queue> = match url {
        QueueUrl::Postgres(u) => queues::connect_postgres(u, purpose)?,
        _ => queues::open(url, purpose)?.queue,
    };
    let listener = TcpListener::bind(listen)
        .map_err(|e| RunnerFailure(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr()?;
    let stop = runyard_serve::Stop::new();
    let s = stop.clone();
    let presses = std::sync::atomic::AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
        errln!("runyard serve: stopping once the requests under way are answered; interrupt again to exit at once");
        s.stop();
    });
    errln!(
        "runyard serve: listening on http://{addr} for {}{}{}",
        url.display(),
        if args.read_only { ", read-only" } else { "" },
        if token.is_some() {
            ", with a token"
        } else {
            ""
        },
    );
    let config = runyard_serve::Config {
        addr,
        token,
        read_only: args.read_only,
        queue_name: url.display(),
        ready_timeout: Duration::from_secs(5),
        program: "runyard serve",
    };
    runyard_serve::serve(queue, listener, config, stop)
        .map_err(|e| RunnerFailure(format!("serving on {addr}: {e}")))?;
    Ok(Exit::Success)
}
