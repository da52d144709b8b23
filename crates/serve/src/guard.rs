//! Who may ask what, checked before any route runs:
//!
//! - with a token, every request but `/healthz`, `/readyz`, `/login` and
//!   the dashboard's two assets carries `Authorization: Bearer TOKEN` (compared in constant time) or
//!   the cookie of a dashboard session (`dash.rs`), or is refused 401 (the
//!   dashboard's page `/` is sent to `/login` instead);
//! - an action made with a session's cookie (not with a bearer token)
//!   carries that session's CSRF token in `X-Runyard-CSRF`, or is refused
//!   403: a cookie alone, which a browser sends by itself, never acts;
//! - on a loopback address without a token, a request whose `Host` is not
//!   a loopback name or address with the server's port is refused 403 (a
//!   page of another site whose name was rebound to 127.0.0.1 sends its
//!   own name);
//! - an action (`POST`, `PUT`, `DELETE`) whose `Origin` is not the
//!   server's own (`http://` and its `Host`) is refused 403: no page of
//!   another site can act;
//! - under `--read-only`, every action is refused 403 (logging in and
//!   out are not actions on the queue).
//!
//! [`check_listen`] is the rule the command applies before it binds: no
//! address but a loopback one without a token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::dash::{cookie, cookie_name, CSRF_HEADER};
use crate::error::ApiError;
use crate::secret::constant_time_eq;
use crate::AppState;

/// The shortest token accepted.
pub const TOKEN_MIN_LEN: usize = 16;

/// Refuses an address other than a loopback one unless a token guards it.
pub fn check_listen(addr: &SocketAddr, has_token: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || has_token {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {addr}, which is not a loopback address, without a token: \
         anyone who can reach it could read and change the queue. Give a token \
         (--token-file FILE, or the environment variable RUNYARD_SERVE_TOKEN) that every \
         request must carry, or listen on 127.0.0.1"
    ))
}

/// Checks a token: at least [`TOKEN_MIN_LEN`] characters, printable ASCII
/// with no space (it travels in a header). The message never repeats it.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.len() < TOKEN_MIN_LEN {
        return Err(format!(
            "the token is {} characters long: give one of at least {TOKEN_MIN_LEN} \
             (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    if let Some(i) = token.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "the token has a space, a control or a non-ASCII character at byte {}: \
             give printable ASCII only (e.g. `openssl rand -hex 32`)",
            i + 1
        ));
    }
    Ok(())
}

/// The checks of this file, in order, before the route.
pub(crate) async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(&s, req.method(), req.uri().path(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(Refused::Api(e)) => e.into_response(),
        Err(Refused::Login) => (
            axum::http::StatusCode::SEE_OTHER,
            [(header::LOCATION, "/login")],
        )
            .into_response(),
    }
}

/// Why a request is not let through.
enum Refused {
    Api(ApiError),
    /// The dashboard's page without a session: the login form instead.
    Login,
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Api(e)
    }
}

/// How a request proved it may ask.
enum Credential {
    /// No token guards the server, or the path is open.
    None,
    Bearer,
    /// A dashboard session, with its CSRF token.
    Session(String),
}

fn check(s: &AppState, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refused> {
    let config = &s.config;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if config.token.is_none() && !host_is_loopback(host, config.addr.port()) {
        return Err(Refused::Api(ApiError::forbidden(format!(
            "refused: the Host header is {host:?}, not a loopback name or address with this \
             server's port (e.g. 127.0.0.1:{port} or localhost:{port}); without a token \
             the server answers only requests made to it by its loopback address",
            port = config.addr.port()
        ))));
    }
    // The assets hold no data of the queue: the login form uses them.
    let open = matches!(
        path,
        "/healthz" | "/readyz" | "/login" | "/assets/app.js" | "/assets/style.css"
    );
    let mut credential = Credential::None;
    if let (Some(token), false) = (&config.token, open) {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.as_bytes().strip_prefix(b"Bearer "));
        let session =
            cookie(headers, &cookie_name(config.addr.port())).and_then(|id| s.sessions.csrf_of(id));
        credential = match (given, session) {
            (Some(t), _) if !constant_time_eq(t, token.as_bytes()) => {
                return Err(ApiError::unauthorized("the bearer token is not this server's").into())
            }
            (Some(_), _) => Credential::Bearer,
            (None, Some(csrf)) => Credential::Session(csrf),
            (None, None) if path == "/" && *method == Method::GET => return Err(Refused::Login),
            (None, None) => {
                return Err(ApiError::unauthorized(
                    "this server needs a token: send `Authorization: Bearer TOKEN`, or log in \
                     to the dashboard at /login",
                )
                .into())
            }
        };
    }
    // Every method but a read changes something: POST, PUT, DELETE.
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Credential::Session(csrf) = &credential {
            let sent = headers.get(CSRF_HEADER).map(|h| h.as_bytes());
            if !sent.is_some_and(|t| constant_time_eq(t, csrf.as_bytes())) {
                return Err(ApiError::forbidden(format!(
                    "refused: a {method} with the dashboard's session cookie but without its \
                     CSRF token in the {CSRF_HEADER} header: act from the dashboard's page, or \
                     send `Authorization: Bearer TOKEN`"
                ))
                .into());
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let own = format!("http://{host}");
            if !origin.eq_ignore_ascii_case(&own) {
                return Err(ApiError::forbidden(format!(
                    "refused: a {method} from the origin {origin:?}, not this server's own \
                     ({own}); actions are taken only from the server's own pages or \
                     from clients that send no Origin"
                ))
                .into());
            }
        }
        if config.read_only && !matches!(path, "/login" | "/logout") {
            return Err(ApiError::forbidden(
                "the server is read-only (--read-only): it takes no action; \
                 start it without --read-only to act on jobs, tasks, limits or schedules",
            )
            .into());
        }
    }
    Ok(())
}

/// Whether `host` (a `Host` header) is a loopback name or address with
/// `port`: `localhost:PORT`, `127.x.y.z:PORT`, `[::1]:PORT`.
fn host_is_loopback(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    if p.parse::<u16>().ok() != Some(port) {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    // An IPv6 address is written in brackets: `[::1]:PORT`.
    let ip = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6,
        None if name.contains(':') => return false,
        None => name,
    };
    ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_and_the_length_agree() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abcdef", b"abcde"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn loopback_hosts_need_the_port() {
        assert!(host_is_loopback("127.0.0.1:8080", 8080));
        assert!(host_is_loopback("localhost:8080", 8080));
        assert!(host_is_loopback("LOCALHOST:8080", 8080));
        assert!(host_is_loopback("127.1.2.3:8080", 8080));
        assert!(host_is_loopback("[::1]:8080", 8080));
        assert!(!host_is_loopback("127.0.0.1", 8080));
        assert!(!host_is_loopback("127.0.0.1:8081", 8080));
        assert!(!host_is_loopback("evil.example:8080", 8080));
        assert!(!host_is_loopback("localhost.evil.example:8080", 8080));
        assert!(!host_is_loopback("10.0.0.1:8080", 8080));
        assert!(!host_is_loopback("", 8080));
        assert!(!host_is_loopback("::1:8080", 8080));
    }

    #[test]
    fn listening_beyond_loopback_needs_a_token() {
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let lo6: SocketAddr = "[::1]:80".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_listen(&lo, false).is_ok());
        assert!(check_listen(&lo6, false).is_ok());
        assert!(check_listen(&any, true).is_ok());
        let e = check_listen(&any, false).unwrap_err();
        assert!(
            e.contains("0.0.0.0:8080") && e.contains("--token-file"),
            "{e}"
        );
    }

    #[test]
    fn tokens_are_long_and_printable_and_never_repeated() {
        assert!(check_token("0123456789abcdef").is_ok());
        let e = check_token("short").unwrap_err();
        assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
        let e = check_token("0123456789 abcdef").unwrap_err();
        assert!(e.contains("byte 11") && !e.contains("abcdef"), "{e}");
    }
}
