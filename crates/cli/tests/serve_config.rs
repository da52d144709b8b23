//! `runyard serve --config FILE`: settings from a TOML file, the
//! `RUNYARD_SERVE_<KEY>` variables and the flags, a flag beating its
//! variable and the variable the file; a worker's `RUNYARD_QUEUE` and
//! `RUNYARD_LISTEN` never read; and a bad file refused (exit 2, with its
//! file, line and column, no secret shown) before the queue is opened.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use settings_files::{runyard, write};
use support::{said_address, Background};

mod settings_files;
mod support;

/// Runs `runyard serve ARGS` with `env` to the end: exit code, stderr.
fn serve_ends(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    settings_files::ends("serve", args, env)
}

/// A server in the background, killed when dropped.
struct Server {
    proc: Background,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut c = runyard();
        c.arg("serve").args(args).envs(env.iter().copied());
        let mut proc = Background::start(c);
        let addr = proc.wait_for("runyard serve says its address", said_address);
        Server { proc, addr }
    }

    /// The line in which it said where it listens.
    fn said(&self) -> String {
        let err = self.proc.stderr();
        err.lines()
            .find(|l| l.contains("listening on"))
            .unwrap_or_else(|| panic!("no listening line in:\n{err}"))
            .to_string()
    }

    /// The status of `GET path`.
    fn status(&self, path: &str) -> u16 {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {raw}"))
    }
}

/// A state file with one succeeded job, at `dir/NAME`: its queue URL.
fn state_file(dir: &Path, name: &str) -> String {
    let db = dir.join(name);
    let o = runyard()
        .args(["run", "-q", "--state", db.to_str().unwrap(), "cpu:n=1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!("sqlite://{}", db.display())
}

#[test]
fn a_flag_beats_its_variable_which_beats_the_file_and_a_workers_variables_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        state_file(dir.path(), "a.db"),
        state_file(dir.path(), "b.db"),
        state_file(dir.path(), "c.db"),
    );
    let token = write(dir.path(), "token", "0123456789abcdef-config\n");
    let file = write(
        dir.path(),
        "serve.toml",
        &format!(
            "# runyard serve\nqueue = \"{a}\"\nlisten = \"127.0.0.1:0\"\nread_only = true\n\
             token_file = \"{token}\"\n"
        ),
    );
    // A worker's variables on the same host: neither is read.
    let worker = [
        ("RUNYARD_QUEUE", "sqlite:///nonexistent/worker.db"),
        ("RUNYARD_LISTEN", "127.0.0.1:1"),
        ("RUNYARD_READ_ONLY", "false"),
    ];
    // The file alone: its queue, address, read-only and token; a real
    // server answering its health check, its API asking for the token.
    let s = Server::start(&["--config", &file], &worker);
    let said = s.said();
    assert!(
        said.contains(&format!("for {a}, read-only, with a token")),
        "{said}"
    );
    assert_eq!(s.status("/healthz"), 200);
    assert_eq!(s.status("/api/v1/tasks"), 401, "the file's token is asked");
    drop(s);
    // The variables beat the file (the file may come from a variable too).
    let s = Server::start(
        &[],
        &[
            ("RUNYARD_SERVE_CONFIG", &file),
            ("RUNYARD_SERVE_QUEUE", &b),
            ("RUNYARD_SERVE_READ_ONLY", "false"),
            ("RUNYARD_SERVE_LISTEN", "localhost:0"),
        ],
    );
    let said = s.said();
    assert!(said.contains(&format!("for {b}, with a token")), "{said}");
    assert_eq!(s.status("/healthz"), 200);
    drop(s);
    // The flags beat both.
    let s = Server::start(
        &["--config", &file, "--queue", &c, "--read-only"],
        &[
            ("RUNYARD_SERVE_QUEUE", &b),
            ("RUNYARD_SERVE_READ_ONLY", "false"),
        ],
    );
    let said = s.said();
    assert!(
        said.contains(&format!("for {c}, read-only, with a token")),
        "{said}"
    );
    drop(s);
    // A value the flag would refuse is refused from its variable, naming it.
    let (code, err) = serve_ends(
        &["--config", &file],
        &[("RUNYARD_SERVE_LISTEN", "example.com:80")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("$RUNYARD_SERVE_LISTEN") && err.contains("IP:PORT"),
        "{err}"
    );
    let (code, err) = serve_ends(&["--config", &file], &[("RUNYARD_SERVE_READ_ONLY", "yes")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("$RUNYARD_SERVE_READ_ONLY"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = format!("queue = \"sqlite://{}\"\n", db.display());
    let cases = [
        // (file text after the queue line, line:column, what the message says)
        (
            "read_only = true\nlisen = \"127.0.0.1:0\"\n",
            ":3:1:",
            "unknown field `lisen`",
        ),
        ("read_only = \"yes\"\n", ":2:13:", "invalid type"),
        ("listen = 8080\n", ":2:10:", "invalid type: integer"),
        ("listen = \"example.com:80\"\n", ":2:10:", "IP:PORT"),
        (
            "token_file = \"\"\n",
            ":2:14:",
            "`token_file`: must not be empty",
        ),
        ("mode = \"thread\"\n", ":2:1:", "unknown field `mode`"),
    ];
    settings_files::refuses_each_file(dir.path(), "serve", &q, &cases);
    // A bad queue URL in the file, with its place.
    let file = write(dir.path(), "badq.toml", "queue = \"mysql://h/db\"\n");
    let (code, err) = serve_ends(&["--config", &file], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("badq.toml:1:9: `queue`"), "{err}");
    // A secret is not shown: not under a misspelled key, nor in a URL.
    for (i, text) in [
        "tokn = \"Sekrit-0123456789abcdef\"\n",
        "queue = \"postgres://u:Sekrit-0123456789abcdef@/db?sslmode=bogus\"\n",
        "queue = postgres://u:Sekrit-0123456789abcdef@h/db\n",
    ]
    .iter()
    .enumerate()
    {
        let file = write(dir.path(), &format!("secret{i}.toml"), text);
        let (code, err) = serve_ends(&["--config", &file], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains(&format!("secret{i}.toml:")), "{err}");
        assert!(!err.contains("Sekrit"), "{text}: {err}");
    }
    // A well-formed URL with a password, to a server that is not there:
    // the failure names the queue without it.
    let file = write(
        dir.path(),
        "pg.toml",
        "queue = \"postgres://u:Sekrit-0123456789abcdef@127.0.0.1:1/db?connect_timeout=5\"\n",
    );
    let (code, err) = serve_ends(&["--config", &file], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("Sekrit"), "{err}");
    // A queue is needed from somewhere; a worker's $RUNYARD_QUEUE is not it.
    let file = write(dir.path(), "noqueue.toml", "read_only = true\n");
    let (code, err) = serve_ends(
        &["--config", &file],
        &[("RUNYARD_QUEUE", &format!("sqlite://{}", db.display()))],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a queue is needed") && err.contains("$RUNYARD_SERVE_QUEUE"),
        "{err}"
    );
    // A file that is not there.
    let (code, err) = serve_ends(&["--config", "/nonexistent/serve.toml"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--config /nonexistent/serve.toml"), "{err}");
    assert!(!db.exists(), "nothing was opened");
}

#[test]
fn a_token_files_errors_name_where_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = format!("sqlite://{}", db.display());
    let missing = dir.path().join("no-token");
    let missing = missing.to_str().unwrap();
    // An unreadable token file: named by the flag, its variable, or the
    // file and key of --config, whichever gave it.
    let (code, err) = serve_ends(&["--queue", &q, "--token-file", missing], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("--token-file {missing}: cannot read it")),
        "{err}"
    );
    let (code, err) = serve_ends(&["--queue", &q], &[("RUNYARD_SERVE_TOKEN_FILE", missing)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "$RUNYARD_SERVE_TOKEN_FILE {missing}: cannot read it"
        )),
        "{err}"
    );
    let file = write(
        dir.path(),
        "t.toml",
        &format!("queue = \"{q}\"\ntoken_file = \"{missing}\"\n"),
    );
    let (code, err) = serve_ends(&["--config", &file], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("`token_file` in {file} {missing}: cannot read it")),
        "{err}"
    );
    // Given twice: by the file's key and by $RUNYARD_SERVE_TOKEN.
    let (code, err) = serve_ends(
        &["--config", &file],
        &[("RUNYARD_SERVE_TOKEN", "0123456789abcdef-env")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("given twice") && err.contains(&format!("(`token_file` in {file})")),
        "{err}"
    );
    assert!(!err.contains("--token-file"), "{err}");
    assert!(!db.exists(), "nothing was opened");
}
