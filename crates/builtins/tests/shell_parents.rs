//! The `shell` task of a job after other jobs: its command reads the
//! parents object from the file `RUNYARD_PARENTS` names and from standard
//! input (unless the job gives its own), and nothing of the file outlives
//! the attempt.

use std::sync::Arc;

use runyard::{CancelToken, Context, JobId, Task};
use runyard_builtins::{Shell, ShellParams, PARENTS_ENV};

const PARENTS: &str = r#"{"extract":{"rows":3},"shard":[1,2]}"#;

fn params(v: serde_json::Value) -> ShellParams {
    serde_json::from_value(v).unwrap()
}

fn with_parents() -> Context {
    Context::new(JobId(5), 1, CancelToken::new()).with_parents(Some(Arc::from(PARENTS)))
}

fn without() -> Context {
    Context::new(JobId(5), 1, CancelToken::new())
}

fn stdout(p: ShellParams, ctx: &Context) -> String {
    Shell.run(p, ctx).unwrap().stdout.unwrap()
}

#[test]
fn the_command_reads_the_parents_from_the_file_and_from_stdin() {
    let p = params(serde_json::json!({
        "cmd": format!("cat \"${PARENTS_ENV}\"; echo; cat \"${PARENTS_ENV}\"; echo; cat"),
        "shell": true,
    }));
    assert_eq!(
        stdout(p, &with_parents()),
        format!("{PARENTS}\n{PARENTS}\n{PARENTS}"),
        "the file opens from its start each time, and stdin holds the same"
    );
}

#[test]
fn the_jobs_own_stdin_wins() {
    let own = params(serde_json::json!({
        "cmd": format!("cat; echo; cat \"${PARENTS_ENV}\""),
        "shell": true,
        "stdin": "mine",
    }));
    assert_eq!(stdout(own, &with_parents()), format!("mine\n{PARENTS}"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "from a file").unwrap();
    let own_file = params(serde_json::json!({
        "cmd": ["cat"],
        "stdin_file": file,
    }));
    assert_eq!(stdout(own_file, &with_parents()), "from a file");
}

#[test]
fn without_parents_there_is_no_variable_and_stdin_is_empty() {
    let p = params(serde_json::json!({
        "cmd": format!("echo \"[${{{PARENTS_ENV}-unset}}]\"; cat"),
        "shell": true,
    }));
    assert_eq!(stdout(p, &without()), "[unset]\n");
}

#[test]
fn the_file_is_unlinked_and_gone_after_the_attempt() {
    let p = params(serde_json::json!({
        "cmd": format!("echo \"${PARENTS_ENV}\"; readlink \"${PARENTS_ENV}\""),
        "shell": true,
    }));
    let out = stdout(p, &with_parents());
    let mut lines = out.lines();
    let path = lines.next().unwrap().to_string();
    let target = lines.next().unwrap().to_string();
    let prefix = format!("/proc/{}/fd/", std::process::id());
    assert!(path.starts_with(&prefix), "{path}");
    assert!(
        target.ends_with("(deleted)"),
        "no name in the temporary directory, even while the command runs: {target}"
    );
    // The descriptor is closed: the path opens nothing, or (its number
    // reused since) another file.
    match std::fs::read_link(&path) {
        Err(_) => {}
        Ok(now) => assert_ne!(now.to_string_lossy(), target),
    }
}

#[test]
fn a_killed_command_leaves_no_file_behind() {
    let token = CancelToken::new();
    let ctx = Context::new(JobId(6), 1, token.clone()).with_parents(Some(Arc::from(PARENTS)));
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("path");
    let p = params(serde_json::json!({
        "cmd": format!("readlink \"${PARENTS_ENV}\" > {}; exec sleep 600", seen.display()),
        "shell": true,
        "kill_grace": "100ms",
    }));
    let h = std::thread::spawn(move || Shell.run(p, &ctx).map(|_| ()));
    // Waits for the command to have read its path, then cancels it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let target = loop {
        if let Ok(t) = std::fs::read_to_string(&seen) {
            if t.ends_with('\n') {
                break t.trim().to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::yield_now();
    };
    token.cancel();
    assert!(
        h.join().unwrap().is_err(),
        "a cancelled attempt does not succeed"
    );
    assert!(target.ends_with("(deleted)"), "{target}");
    let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    assert!(!open.contains(&target), "the file is closed: {open:?}");
}
