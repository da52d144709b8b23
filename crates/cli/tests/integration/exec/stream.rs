//! `exec` over a stream of inputs: it reads them as it needs them (the
//! first jobs run before the input ends) and holds a bounded number of
//! jobs however many inputs there are, with `--keep-order` too.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc::channel;
use std::time::Duration;

use super::exec;
use crate::util::{runyard, wait_exit};

/// The `(held, limit)` that `RUNYARD_EXEC_DEBUG_HELD` makes `exec` say.
fn held(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("runyard: debug: at most "))
        .unwrap_or_else(|| panic!("no held count in {stderr}"));
    let (n, rest) = line.split_once(" jobs held at once (limit ").unwrap();
    (
        n.parse().unwrap(),
        rest.trim_end_matches(')').parse().unwrap(),
    )
}

fn exec_counted(args: &[&str], input: &str) -> crate::util::Ran {
    let mut c = runyard();
    c.env("RUNYARD_EXEC_DEBUG_HELD", "1").arg("exec").args(args);
    super::with_input(c, input)
}

#[test]
fn the_first_jobs_run_before_the_input_ends() {
    let mut child = runyard()
        .args(["exec", "-j2", "sh", "-c", "echo ran $1", "sh", "{}"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    // Standard input stays open: the job of the first line runs anyway.
    let got = rx.recv_timeout(Duration::from_secs(60));
    assert_eq!(got.as_deref(), Ok("ran first"), "the first input's job ran");
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), 0);
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(rest, ["ran second"]);
}

#[test]
fn the_jobs_held_stay_bounded_however_many_inputs() {
    let input: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    let r = exec_counted(&["-j2", "true"], &input);
    r.code(0);
    let (most, limit) = held(&r.stderr);
    assert!(most <= limit, "held {most}, limit {limit}");
    assert!(
        limit < 3000 / 4,
        "the limit ({limit}) is far below the inputs"
    );
    assert!(
        r.stderr.contains("3000"),
        "every job is counted: {}",
        r.stderr
    );
}

#[test]
fn keep_order_prints_in_order_within_a_bounded_window() {
    // Later jobs often end first: the printer holds them until their turn.
    let script = "sleep 0.0$(( ($1 * 7) % 4 )); echo $1";
    let n = 600;
    let input: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let r = exec_counted(&["-k", "-j4", "bash", "-c", script, "bash", "{}"], &input);
    r.code(0);
    let expected: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let got: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(got, expected);
    let (most, limit) = held(&r.stderr);
    assert!(most <= limit && limit < n, "held {most}, limit {limit}");
}

#[test]
fn without_the_variable_nothing_more_is_said() {
    let r = exec(&["-j2", "true"], "1\n2\n");
    r.code(0);
    assert!(!r.stderr.contains("debug"), "{}", r.stderr);
}

/// The `(most, now)` job records the queue held, that
/// `RUNYARD_EXEC_DEBUG_HELD` makes `exec` say.
fn records(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("runyard: debug: at most ")
                .and_then(|l| l.strip_suffix(" at the end"))
        })
        .unwrap_or_else(|| panic!("no count of records in {stderr}"));
    let (most, now) = line
        .split_once(" job records in the queue at once, ")
        .unwrap();
    (most.parse().unwrap(), now.parse().unwrap())
}

#[test]
fn the_queue_forgets_each_job_once_printed_and_reported() {
    let n = 3000;
    let input: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let with_report = ["--json", report.to_str().unwrap(), "-j2", "true"];
    for args in [&["-j2", "true"][..], &with_report[..]] {
        let r = exec_counted(args, &input);
        r.code(0);
        let (_, limit) = held(&r.stderr);
        let (most, now) = records(&r.stderr);
        assert!(
            most <= 2 * limit,
            "{most} records held, window {limit} ({args:?})"
        );
        assert!(
            2 * limit < n,
            "the bound ({}) is far below the inputs",
            2 * limit
        );
        assert_eq!(now, 0, "every job forgotten at the end ({args:?})");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let ids: Vec<u64> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=n).collect::<Vec<u64>>(),
        "every job once, in order"
    );
    assert_eq!(v["summary"]["succeeded"], n);
}
