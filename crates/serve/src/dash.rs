//! The web dashboard: its pages and assets, written under `assets/` and
//! held in the binary (nothing is loaded from the network), and its
//! login when a token guards the server.
//!
//! - `GET /`: the dashboard (`assets/index.html`), one page whose script
//!   (`assets/app.js`) draws the overview, jobs, a job, dead jobs and
//!   workers from the JSON API, routed by the URL's `#` part, and polls
//!   the API every 2 s while the tab is visible;
//! - `GET /assets/app.js`, `GET /assets/style.css`;
//! - `GET /login`, `POST /login` (the form's `token`), `POST /logout`: a
//!   session whose id is in an HttpOnly, SameSite=Strict cookie (never
//!   `Secure`: the server speaks plain HTTP, for loopback or behind a
//!   proxy that terminates TLS). Each session has a CSRF token that the
//!   page holds and sends as [`CSRF_HEADER`] with each action; `guard.rs`
//!   checks both.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::secret::constant_time_eq;
use crate::AppState;

const INDEX: &str = include_str!("../assets/index.html");
const LOGIN: &str = include_str!("../assets/login.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// The header in which the dashboard sends its session's CSRF token with
/// each action.
pub(crate) const CSRF_HEADER: &str = "x-runyard-csrf";

/// How long a session lasts after its login.
const SESSION_FOR: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once; a login beyond them ends the oldest.
const MAX_SESSIONS: usize = 64;

/// Who the pages and the content types they are sent with may load:
/// this server only, no frame, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A logged-in browser.
struct Session {
    id: String,
    csrf: String,
    until: Instant,
}

/// The sessions of logged-in browsers, in the server's memory (a restart
/// logs everyone out).
#[derive(Default)]
pub(crate) struct Sessions(Mutex<Vec<Session>>);

impl Sessions {
    /// A new session: its id and its CSRF token.
    fn open(&self) -> std::io::Result<(String, String)> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        all.retain(|s| s.until > now);
        if all.len() >= MAX_SESSIONS {
            all.remove(0);
        }
        all.push(Session {
            id: id.clone(),
            csrf: csrf.clone(),
            until: now + SESSION_FOR,
        });
        Ok((id, csrf))
    }

    /// The CSRF token of the live session with this id, compared with
    /// every session's in constant time.
    pub(crate) fn csrf_of(&self, id: &str) -> Option<String> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut found = None;
        for s in all.iter() {
            if constant_time_eq(s.id.as_bytes(), id.as_bytes()) && s.until > now {
                found = Some(s.csrf.clone());
            }
        }
        found
    }

    fn close(&self, id: &str) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|s| !constant_time_eq(s.id.as_bytes(), id.as_bytes()));
    }
}

/// 32 random bytes from the operating system, in hex.
fn random_hex() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The name of the session cookie of the server on `port`: cookies are
/// kept per host, not per port, so that two servers on one host each
/// have their own.
pub(crate) fn cookie_name(port: u16) -> String {
    format!("runyard_session_{port}")
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn page(html: String) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    secure(&mut r);
    r
}

/// The headers of every page and asset: the content security policy, no
/// framing, no sniffing, no referrer sent to another site.
fn secure(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under the latter a form's POST
    // carries `Origin: null`, which the Origin check refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Text for an HTML attribute or element.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /`: the dashboard, with what its script needs to know: the
/// session's CSRF token (empty without a session), whether the server is
/// read-only, whether there is a session to log out of, the queue's name.
pub(crate) async fn index(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let csrf =
        cookie(&headers, &cookie_name(s.config.addr.port())).and_then(|id| s.sessions.csrf_of(id));
    let html = INDEX
        .replace("{{csrf}}", &escape(csrf.as_deref().unwrap_or("")))
        .replace(
            "{{read_only}}",
            if s.config.read_only { "true" } else { "false" },
        )
        .replace("{{session}}", if csrf.is_some() { "true" } else { "false" })
        .replace("{{queue}}", &escape(&s.config.queue_name));
    page(html)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    secure(&mut r);
    r
}

/// `GET /assets/app.js`.
pub(crate) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /assets/style.css`.
pub(crate) async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" id=\"login-error\">{}</p>",
            escape(message)
        )
    };
    let mut r = page(LOGIN.replace("{{message}}", &note));
    *r.status_mut() = status;
    r
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// `GET /login`: the form (the dashboard itself when no token guards the
/// server).
pub(crate) async fn login_form(State(s): State<AppState>) -> Response {
    if s.config.token.is_none() {
        return see_other("/");
    }
    login_page(StatusCode::OK, "")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `POST /login` with `token=...`: a session when the token is the
/// server's (compared in constant time), the form again with why not
/// otherwise.
pub(crate) async fn login(
    State(s): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(token) = &s.config.token else {
        return see_other("/");
    };
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            "the form must be sent as application/x-www-form-urlencoded with a field `token`",
        );
    };
    if !constant_time_eq(form.token.trim().as_bytes(), token.as_bytes()) {
        return login_page(
            StatusCode::UNAUTHORIZED,
            "that is not the token of this server: give the one in its --token-file or \
             RUNYARD_SERVE_TOKEN",
        );
    }
    let (id, _) = match s.sessions.open() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("runyard serve: no session made: {e}");
            return login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server could not make a session (the server's log says why)",
            );
        }
    };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        cookie_name(s.config.addr.port()),
        SESSION_FOR.as_secs()
    );
    let mut r = see_other("/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: the session ends, its cookie is cleared.
pub(crate) async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let name = cookie_name(s.config.addr.port());
    if let Some(id) = cookie(&headers, &name) {
        s.sessions.close(id);
    }
    let mut r = see_other("/login");
    let clear = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_their_whole_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; runyard_session_80=xyz; runyard_session_8080=abc"),
        );
        assert_eq!(cookie(&h, "runyard_session_8080"), Some("abc"));
        assert_eq!(cookie(&h, "runyard_session_80"), Some("xyz"));
        assert_eq!(cookie(&h, "runyard_session_1"), None);
    }

    #[test]
    fn sessions_are_found_by_id_and_end_on_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open().unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(s.csrf_of(&id), Some(csrf));
        assert_eq!(s.csrf_of("nope"), None);
        s.close(&id);
        assert_eq!(s.csrf_of(&id), None);
        for _ in 0..MAX_SESSIONS + 3 {
            s.open().unwrap();
        }
        assert_eq!(s.0.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
