//! `runyard prune` on an SQLite state file: what finished long enough ago
//! goes, with its attempts; dead jobs only when asked; the counts follow.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{run, wait_until, Dir};

fn counts(file: &str) -> Value {
    let r = run(&["status", "--state", file, "--json"]);
    r.code(0);
    let v: Value = serde_json::from_str(&r.stdout).expect("status JSON");
    v["counts"].clone()
}

#[test]
fn prune_deletes_what_finished_before_the_cut_off_from_a_state_file() {
    let d = Dir::new();
    let file = d.path("q.db");
    let file = file.to_str().unwrap();
    let url = format!("sqlite://{file}");
    // Two successes, one dead job.
    run(&[
        "run",
        "--state",
        file,
        "noop",
        "noop",
        "fail:k=5",
        "--max-attempts",
        "1",
        "-q",
    ])
    .code(1);
    // Every job ended before the run did.
    let ended = Instant::now();
    let before = counts(file);
    assert_eq!(
        (before["succeeded"].as_u64(), before["dead"].as_u64()),
        (Some(2), Some(1))
    );

    let r = run(&["prune", "--queue", &url, "--older-than", "1h"]);
    r.code(0);
    assert!(r.stdout.contains("pruned 0 jobs"), "{}", r.stdout);
    assert_eq!(counts(file), before, "nothing finished an hour ago");

    wait_until(Duration::from_secs(5), "10 ms after the run", || {
        ended.elapsed() > Duration::from_millis(10)
    });
    let r = run(&["prune", "--queue", &url, "--older-than", "5ms"]);
    r.code(0);
    assert!(r.stdout.contains("pruned 2 jobs"), "{}", r.stdout);
    let after = counts(file);
    assert_eq!(
        (after["succeeded"].as_u64(), after["dead"].as_u64()),
        (Some(0), Some(1)),
        "dead jobs stay without --dead: {after}"
    );
    // The pruned jobs' attempts went with them: the dead job's alone remain.
    assert_eq!(attempts(file), 1, "the dead job's attempt is left");

    let r = run(&["prune", "--queue", &url, "--older-than", "5ms", "--dead"]);
    r.code(0);
    assert!(r.stdout.contains("pruned 1 jobs"), "{}", r.stdout);
    assert_eq!(counts(file)["dead"].as_u64(), Some(0));
    assert_eq!(attempts(file), 0);
}

/// The attempts the state file holds.
fn attempts(file: &str) -> i64 {
    let c = rusqlite::Connection::open(file).unwrap();
    c.query_row("SELECT COUNT(*) FROM runyard_attempts", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn prune_refuses_a_queue_in_memory() {
    let r = run(&["prune", "--queue", "memory", "--older-than", "1d"]);
    r.code(2);
    assert!(r.stderr.contains("outlives the process"), "{}", r.stderr);
}
