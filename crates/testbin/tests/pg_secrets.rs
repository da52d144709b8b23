//! A PostgreSQL password never shows: not in what `submit`, `worker`,
//! `status` and `exec` write (standard output and error, the events
//! file), not in the queue's tables, and not in the environment of the
//! commands that `shell` jobs and `exec` run (nor the dashboard's token).
//! Against a cluster of the test's own with password authentication.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use runyard_postgres::testing::OwnServer;

const SECRET: &str = "pw-9e41c7-secret";
const TOKEN: &str = "token-5b02aa-secret";

fn said(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// A child killed (and reaped) when dropped, should the test fail first.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_password_appears_nowhere_and_commands_do_not_inherit_it() {
    let server = OwnServer::start(
        "password_encryption = 'scram-sha-256'",
        "host all all 127.0.0.1/32 scram-sha-256",
        &[],
    );
    let mut admin = server.admin("postgres");
    admin
        .batch_execute(&format!("CREATE ROLE app LOGIN PASSWORD '{SECRET}'"))
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE appdb OWNER app")
        .unwrap();
    let port = server.port();
    let with_password = format!("postgres://app:{SECRET}@127.0.0.1:{port}/appdb?schema=secrets");
    let without = format!("postgres://app@127.0.0.1:{port}/appdb?schema=secrets");
    let d = dir();
    let env_file = d.path().join("env.txt");
    let events = d.path().join("events.jsonl");
    let jobs = d.path().join("jobs.toml");
    std::fs::write(
        &jobs,
        format!(
            "[[job]]\ntask = \"shell\"\nparams = {{ cmd = [\"sh\", \"-c\", \"env > {}\"] }}\n\n\
             [[job]]\ntask = \"fail\"\nmax_attempts = 1\nparams = {{ permanent = true }}\n",
            env_file.display()
        ),
    )
    .unwrap();
    let mut written = String::new();

    // submit, with the password in the URL.
    let out = finish({
        let mut c = runyard();
        c.args([
            "submit",
            "-f",
            jobs.to_str().unwrap(),
            "--queue",
            &with_password,
        ]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    written += &said(&out);

    // A worker, with the password in PGPASSWORD and the dashboard's token
    // in its environment.
    let log = d.path().join("worker.log");
    let mut worker = Killed(
        runyard()
            .args([
                "worker", "--queue", &without, "--name", "w1", "--lease", "2s",
            ])
            .args(["--events", events.to_str().unwrap()])
            .env("PGPASSWORD", SECRET)
            .env("RUNYARD_SERVE_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut db = server.admin("appdb");
    let ended = |db: &mut postgres::Client| {
        db.query_one(
            "SELECT COUNT(*) FROM secrets.jobs WHERE state IN (3, 4)",
            &[],
        )
        .ok()
        .is_some_and(|r| r.get::<_, i64>(0) == 2)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ended(&mut db) {
        assert!(
            std::time::Instant::now() < deadline,
            "the jobs did not end; the worker's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: our own child, not yet reaped.
    unsafe { libc::kill(worker.0.id() as i32, libc::SIGTERM) };
    let st = wait_for_exit(&mut worker.0, Duration::from_secs(30));
    assert!(st.success(), "{}", std::fs::read_to_string(&log).unwrap());

    // status, with the password from a password file; and with a wrong
    // password in the URL (refused, the password not repeated).
    let pgpass = d.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:appdb:app:{SECRET}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for args in [&["status"][..], &["status", "--json"]] {
        let out = finish({
            let mut c = runyard();
            c.args(args)
                .args(["--queue", &without])
                .env("PGPASSFILE", &pgpass)
                .env_remove("PGPASSWORD");
            c
        });
        assert!(out.status.success(), "{}", text(&out.stderr));
        written += &said(&out);
    }
    // The same file readable by others: ignored, with a warning.
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = finish({
        let mut c = runyard();
        c.args(["status", "--queue", &without])
            .env("PGPASSFILE", &pgpass)
            .env_remove("PGPASSWORD");
        c
    });
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("has group or world access (mode 644); it is ignored"),
        "{err}"
    );
    written += &said(&out);
    let wrong = with_password.replace(SECRET, &format!("{SECRET}-wrong"));
    let out = finish({
        let mut c = runyard();
        c.args(["status", "--queue", &wrong]);
        c
    });
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("password authentication failed"), "{err}");
    written += &said(&out);

    // exec: the commands it runs do not see the variables either.
    let out = finish({
        let mut c: Command = runyard();
        c.args(["exec", "--", "sh", "-c", "env", ":::", "one"])
            .env("PGPASSWORD", SECRET)
            .env("RUNYARD_SERVE_TOKEN", TOKEN);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("PATH="), "{}", text(&out.stdout));
    written += &said(&out);

    written += &std::fs::read_to_string(&log).unwrap();
    let events = std::fs::read_to_string(&events).unwrap();
    assert!(events.contains("succeeded"), "{events}");
    written += &events;
    // What the queue holds: jobs, attempts, workers, events.
    for table in ["jobs", "attempts", "workers", "events"] {
        let row = db
            .query_one(
                &format!("SELECT COALESCE(string_agg(t::text, ' '), '') FROM secrets.{table} t"),
                &[],
            )
            .unwrap();
        written += &row.get::<_, String>(0);
    }
    assert!(
        !written.contains(SECRET),
        "the password shows in:\n{written}"
    );
    assert!(!written.contains(TOKEN), "the token shows in:\n{written}");

    // The shell job ran with neither variable.
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains("PGPASSWORD") && !env.contains(SECRET),
        "{env}"
    );
    assert!(
        !env.contains("RUNYARD_SERVE_TOKEN") && !env.contains(TOKEN),
        "{env}"
    );
}
