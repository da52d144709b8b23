//! What xargs and parallel cannot do, and what `exec` does as they do:
//! each command once unless retries are asked for, timeouts, halting, the
//! summary on standard error, bad input refused before anything runs.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{exec, sorted};
use crate::util::{runyard, signal, wait_exit, wait_until, Dir};

#[test]
fn each_jobs_output_is_printed_whole_and_in_order_with_keep_order() {
    let script = "for i in $(seq 300); do echo $1-$i; done; sleep 0.0$((RANDOM % 5))";
    let input: String = (1..=12).map(|i| format!("{i}\n")).collect();
    let r = exec(&["-j", "4", "bash", "-c", script, "bash", "{}"], &input);
    r.code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 12 * 300);
    for block in lines.chunks(300) {
        let job = block[0].split('-').next().unwrap();
        for (i, l) in block.iter().enumerate() {
            assert_eq!(
                *l,
                format!("{job}-{}", i + 1),
                "a job's output is never interleaved with another's"
            );
        }
    }
    let k = exec(
        &["-k", "-j", "4", "bash", "-c", script, "bash", "{}"],
        &input,
    );
    let firsts: Vec<&str> = k.stdout.lines().step_by(300).collect();
    let expected: Vec<String> = (1..=12).map(|i| format!("{i}-1")).collect();
    assert_eq!(firsts, expected);
}

#[test]
fn stdout_carries_only_the_commands_output() {
    let r = exec(
        &[
            "--max-attempts",
            "1",
            "sh",
            "-c",
            "echo ok-$1; test $1 != 2",
            "sh",
            "{}",
        ],
        "1\n2\n",
    );
    r.code(1);
    assert_eq!(sorted(&r.stdout), ["ok-1", "ok-2"]);
    assert!(
        r.stderr
            .contains("runyard: job 2 (`2`) dead after 1 attempt(s): exited with code 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let d = Dir::new();
    let marker = d.path("ran");
    let touch = format!("touch {}", marker.display());
    for (args, msg) in [
        (
            vec!["sh", "-c", touch.as_str(), "out/{%}"],
            "`{%}` (the job slot) in `out/{%}` is not supported",
        ),
        (
            vec!["-j", "0", "sh", "-c", touch.as_str()],
            "must be at least 1",
        ),
        (
            vec!["-a", "/no/such/inputs", "sh", "-c", touch.as_str()],
            "/no/such/inputs: cannot read the input file",
        ),
        (
            vec!["--mode", "process", "sh", "-c", touch.as_str()],
            "--mode process does not apply to exec",
        ),
        (
            vec!["--joblog", "-", "sh", "-c", touch.as_str()],
            "--joblog -: standard output carries the commands' output",
        ),
        (
            vec!["-a", "-", "-a", "-", "sh", "-c", touch.as_str()],
            "standard input (`-`) is given as an input source twice",
        ),
    ] {
        let r = exec(&args, "1\n");
        r.code(2);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
        assert!(!marker.exists(), "{args:?} ran a command");
    }
    let r = exec(&[":::", "a"], "");
    r.code(2);
    assert!(r.stderr.contains("no command given"), "{}", r.stderr);
}

#[test]
fn a_command_that_does_not_exist_fails_once_and_permanently() {
    let d = Dir::new();
    let report = d.path("r.json");
    let r = exec(
        &[
            "--max-attempts",
            "3",
            "--json",
            report.to_str().unwrap(),
            "/no/such/command",
        ],
        "x\n",
    );
    r.code(1);
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    let attempts = v["jobs"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "not retried");
    let err = attempts[0]["error"].as_str().unwrap();
    assert!(
        err.starts_with("cannot run `/no/such/command`: No such file or directory"),
        "{err}"
    );
}

/// Commands that fail or hang at random: failures are retried until they
/// pass, hangs are killed at the timeout (with their whole process group),
/// and every input is accounted for.
#[test]
fn retries_and_timeouts_on_flaky_and_hanging_commands() {
    let d = Dir::new();
    let report = d.path("r.json");
    let state = d.path("state");
    std::fs::create_dir(&state).unwrap();
    // Input i: fails on its first run when i % 3 == 0, hangs (with a child of
    // its own) when i % 7 == 0, succeeds otherwise. The hanging sleeps carry
    // this test's own number, so that looking for leftovers finds only them.
    let hang = format!("sleep {}", 3_000_000 + std::process::id());
    let script = format!(
        r#"i=$1; mark={}/$i
if [ $((i % 7)) -eq 0 ]; then {hang} & {hang}; fi
if [ $((i % 3)) -eq 0 ] && [ ! -e $mark ]; then touch $mark; exit 9; fi
echo done-$i"#,
        state.display()
    );
    let input: String = (1..=60).map(|i| format!("{i}\n")).collect();
    let r = exec(
        &[
            "-j",
            "8",
            "--max-attempts",
            "2",
            "--backoff",
            "none",
            // Long enough that a quick command never reaches it on a loaded
            // machine; only the hanging ones do.
            "--timeout",
            "3s",
            "--json",
            report.to_str().unwrap(),
            "sh",
            "-c",
            &script,
            "sh",
            "{}",
        ],
        &input,
    );
    r.code(1);
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 60);
    for (i, j) in (1..=60).zip(jobs) {
        let attempts = j["attempts"].as_array().unwrap();
        if i % 7 == 0 {
            assert_eq!(j["state"], "dead", "input {i}");
            assert!(
                attempts.iter().all(|a| a["outcome"] == "timed_out"),
                "input {i}: {attempts:?}"
            );
        } else if i % 3 == 0 {
            assert_eq!(
                (j["state"].as_str(), attempts.len()),
                (Some("succeeded"), 2),
                "input {i}"
            );
            assert_eq!(attempts[0]["outcome"], "failed");
        } else {
            assert_eq!(
                (j["state"].as_str(), attempts.len()),
                (Some("succeeded"), 1),
                "input {i}"
            );
        }
    }
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("done-")).count(),
        60 - 8
    );
    // No hanging sleep of this test is left: each timed-out group was killed.
    let left = Command::new("pgrep").args(["-f", &hang]).output().unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn halt_soon_starts_no_more_jobs_after_the_first_dead_one() {
    let r = exec(
        &[
            "-j",
            "1",
            "--halt",
            "soon",
            "--max-attempts",
            "1",
            "sh",
            "-c",
            "echo r$1; test $1 != 3",
            "sh",
            "{}",
        ],
        "1\n2\n3\n4\n5\n",
    );
    r.code(1);
    assert_eq!(sorted(&r.stdout), ["r1", "r2", "r3"]);
}

#[test]
fn options_end_where_the_command_begins() {
    // `-j2` is runyard's; `-x` and `-c` after the command are the command's.
    let r = exec(&["-k", "-j2", "printf", "%s-%s\n", "-x", "{}"], "1\n2\n");
    r.code(0);
    assert_eq!(r.stdout, "-x-1\n-x-2\n");
    let r = exec(&["-j2", "true"], "1\n2\n3\n");
    r.code(0);
}

#[test]
fn each_command_runs_once_unless_retries_are_asked_for() {
    let d = Dir::new();
    let count = d.path("count");
    let script = format!("echo x >> {}; exit 1", count.display());
    let r = exec(&["sh", "-c", &script], "a\n");
    r.code(1);
    assert_eq!(d.read("count").lines().count(), 1, "one attempt by default");
    let r = exec(
        &[
            "--max-attempts",
            "3",
            "--backoff",
            "none",
            "sh",
            "-c",
            &script,
        ],
        "a\n",
    );
    r.code(1);
    assert_eq!(d.read("count").lines().count(), 1 + 3);
    let help = runyard().args(["exec", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Each command runs once, as with xargs and parallel"),
        "{help}"
    );
}

#[test]
fn off_a_terminal_the_summary_goes_to_stderr_also_when_interrupted() {
    let r = exec(&["-k", "echo"], "a\nb\n");
    r.code(0);
    assert_eq!(r.stdout, "a\nb\n", "the summary is not in the output");
    let total = r
        .stderr
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no summary: {}", r.stderr));
    assert_eq!(
        total.split_whitespace().take(3).collect::<Vec<_>>(),
        ["total", "2", "2"]
    );

    let d = Dir::new();
    let started = d.path("started");
    let script = format!("touch {}; exec sleep 600", started.display());
    let mut child = runyard()
        .args(["exec", "--grace", "100ms", "sh", "-c", &script, ":::", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the command started", || {
        started.exists()
    });
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), 130);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("runyard: interrupted: starting no more commands"),
        "{stderr}"
    );
    assert!(stderr.contains("(interrupted)"), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("total")), "{stderr}");
}
