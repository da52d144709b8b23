//! `runyard worker --config FILE`: settings from a TOML file, the
//! `RUNYARD_<KEY>` variables and the flags, a flag beating its variable
//! and the variable the file; and a bad file refused (exit 2, with its
//! file, line and column) before the queue is opened.

use settings_files::{runyard, write};
use support::Background;

mod settings_files;
mod support;

/// Runs `runyard worker ARGS` with `env` to the end: exit code, stderr.
fn worker_ends(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    settings_files::ends("worker", args, env)
}

/// A worker in the background, its stderr collected; killed when dropped.
struct Worker(Background);

impl Worker {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut c = runyard();
        c.arg("worker").args(args).envs(env.iter().copied());
        Worker(Background::start(c))
    }

    /// The name it said it drains under, once it says so.
    fn draining_as(&mut self) -> String {
        self.0.wait_for("the worker starts draining", |err| {
            let rest = err.split("runyard worker `").nth(1)?;
            let (name, _) = rest.split_once("` draining")?;
            Some(name.to_string())
        })
    }
}

#[test]
fn a_flag_beats_its_variable_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let file = write(
        dir.path(),
        "runyard.toml",
        &format!(
            "queue = \"sqlite://{}\"\nname = \"from-file\"\njobs = 2\nlease = \"5s\"\n\
             tasks = [\"cpu\", \"sleep\"]\nno_schedules = true\n",
            db.display()
        ),
    );
    // The file alone: its queue and name.
    let mut w = Worker::start(&["--config", &file], &[]);
    assert_eq!(w.draining_as(), "from-file");
    drop(w);
    assert!(db.exists(), "the file's queue was opened");
    // The variable beats the file.
    let mut w = Worker::start(&["--config", &file], &[("RUNYARD_NAME", "from-env")]);
    assert_eq!(w.draining_as(), "from-env");
    drop(w);
    // The flag beats both; the file may come from $RUNYARD_CONFIG too.
    let mut w = Worker::start(
        &["--name", "from-flag"],
        &[("RUNYARD_NAME", "from-env"), ("RUNYARD_CONFIG", &file)],
    );
    assert_eq!(w.draining_as(), "from-flag");
    drop(w);
    // A switch in the file (quiet) holds unless the variable turns it off.
    let quiet = write(
        dir.path(),
        "quiet.toml",
        &format!("queue = \"sqlite://{}\"\nquiet = true\n", db.display()),
    );
    let mut w = Worker::start(&["--config", &quiet], &[("RUNYARD_QUIET", "false")]);
    w.draining_as();
    drop(w);
    // A value the flag would refuse is refused from the variable, naming it.
    let (code, err) = worker_ends(&["--config", &file], &[("RUNYARD_LEASE", "10ms")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("$RUNYARD_LEASE") && err.contains("at least 1s"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = format!("queue = \"sqlite://{}\"\n", db.display());
    let cases = [
        // (file text after the queue line, line:column, what the message says)
        ("jobs = 4\nlese = \"5s\"\n", ":3:1:", "unknown field `lese`"),
        (
            "jobs = \"four\"\n",
            ":2:8:",
            "invalid type: string \"four\"",
        ),
        ("no_schedules = \"yes\"\n", ":2:16:", "invalid type"),
        ("mode = \"fast\"\n", ":2:8:", "`mode`: unknown mode `fast`"),
        ("jobs = 0\n", ":2:8:", "`jobs`: must be at least 1"),
        (
            "lease = \"100ms\"\n",
            ":2:9:",
            "`lease`: a lease of 100ms is too short",
        ),
        ("tasks = [\"cpu\", 3]\n", ":2:9:", "list of task names"),
        ("listen = \"example.com:80\"\n", ":2:10:", "IP:PORT"),
    ];
    settings_files::refuses_each_file(dir.path(), "worker", &q, &cases);
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
        let (code, err) = worker_ends(&["--config", &file], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains(&format!("secret{i}.toml:")), "{err}");
        assert!(!err.contains("Sekrit"), "{text}: {err}");
    }
    // A queue is needed from somewhere.
    let file = write(dir.path(), "noqueue.toml", "jobs = 2\n");
    let (code, err) = worker_ends(&["--config", &file], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a queue is needed"), "{err}");
    // A file that is not there.
    let (code, err) = worker_ends(&["--config", "/nonexistent/runyard.toml"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--config /nonexistent/runyard.toml"), "{err}");
    assert!(!db.exists(), "nothing was opened");
}
