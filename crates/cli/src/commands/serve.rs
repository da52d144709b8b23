//! `runyard serve`: the JSON API, `/metrics` and the health checks of
//! `runyard-serve` over a queue (PostgreSQL, or a state file that a run or
//! a worker may be writing). Safe by default: loopback only unless a
//! token guards it (docs/api.md). Its settings are merged from its flags,
//! the `RUNYARD_SERVE_<KEY>` variables and `--config FILE` by
//! `serve_config.rs`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::serve_config;
use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::queues::{self, Purpose, QueueUrl, QueueUrlParser};

/// The environment variable that may hold the token.
const TOKEN_ENV: &str = "RUNYARD_SERVE_TOKEN";

#[derive(Debug, Args)]
#[command(
    after_help = "Routes: /api/v1/jobs, /api/v1/jobs/ID, POST /api/v1/jobs/ID/retry and /cancel, \
/api/v1/tasks, /api/v1/workers, /api/v1/limits, /api/v1/schedules, /metrics, /healthz, /readyz \
(docs/api.md, docs/metrics.md).\n\n\
Settings: each flag's long name with `_` for `-` is a key of the --config file (queue, listen, \
read_only, token_file) and a $RUNYARD_SERVE_<KEY> variable (RUNYARD_SERVE_QUEUE, \
RUNYARD_SERVE_LISTEN, RUNYARD_SERVE_READ_ONLY, RUNYARD_SERVE_TOKEN_FILE); a flag beats its \
variable, which beats the file. A worker's RUNYARD_QUEUE and RUNYARD_LISTEN are not read \
(docs/api.md, \"Settings\").\n\n\
A token (--token-file FILE, or $RUNYARD_SERVE_TOKEN) is needed to listen on an address other \
than a loopback one; with a token, every /api and /metrics request must carry \
`Authorization: Bearer TOKEN`.\n\n\
Exit codes: 0 stopped by SIGTERM or Ctrl-C; 2 usage error (a non-loopback address without a \
token among them); 3 the queue or the address could not be opened."
)]
pub(crate) struct ServeArgs {
    /// Settings from this TOML file, its keys the long flags' names with `_`
    /// for `-` (queue, listen, read_only, token_file); each is also a
    /// $RUNYARD_SERVE_<KEY> variable. A flag beats the variable, which beats
    /// the file.
    #[arg(long, value_name = "FILE", env = "RUNYARD_SERVE_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH.
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser, env = "RUNYARD_SERVE_QUEUE")]
    pub(crate) queue: Option<QueueUrl>,

    /// The address to listen on [default: 127.0.0.1:8080] (port 0: any free
    /// port; the address bound is said on standard error).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub(crate) listen: Option<SocketAddr>,

    /// Serve no action: retry and cancel are refused (403).
    #[arg(long)]
    pub(crate) read_only: bool,

    /// A file holding the token every /api and /metrics request must carry
    /// (its first line; also $RUNYARD_SERVE_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// The address `serve` listens on when none is given.
pub(crate) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080` or `localhost:8080`.
pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, p)));
        }
    }
    s.parse().map_err(|_| {
        format!(
            "`{s}` is not an address to listen on: give IP:PORT, e.g. 127.0.0.1:8080, \
             [::1]:8080 or 0.0.0.0:8080 (with a token)"
        )
    })
}

/// The token from `--token-file` or the environment, checked.
pub(crate) fn token(token_file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let env = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let token = match (token_file, env) {
        (Some(_), Some(_)) => {
            return Err(UsageError(format!(
                "a token is given twice, by --token-file and by ${TOKEN_ENV}: give one"
            ))
            .into())
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!(
                    "--token-file {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            let first = text.lines().next().unwrap_or("").trim().to_string();
            runyard_serve::check_token(&first)
                .map_err(|e| UsageError(format!("--token-file {}: {e}", path.display())))?;
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
    let token = token(args.token_file.as_deref())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            parse_listen("localhost:81"),
            Ok("127.0.0.1:81".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:8080"),
            Ok("[::1]:8080".parse().unwrap())
        );
        let e = parse_listen("example.com:80").unwrap_err();
        assert!(e.contains("IP:PORT"), "{e}");
        assert!(parse_listen("127.0.0.1").is_err());
    }
}
