//! `runyard serve`'s flags, as clap reads them, and the address it
//! listens on by default (merged with a config file and variables by
//! `serve_config.rs` before it serves).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use crate::queues::{QueueUrl, QueueUrlParser};

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

    /// Where `token_file` came from, as messages name it (set when the
    /// settings are merged).
    #[arg(skip)]
    pub(crate) token_from: Option<String>,
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
