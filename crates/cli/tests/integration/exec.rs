//! `runyard exec` against GNU parallel and xargs on the same inputs, then
//! what they cannot do: retries, timeouts, halting.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::{runyard, Dir, Ran};

/// Runs a command with `input` on its standard input.
fn with_input(mut cmd: Command, input: &str) -> Ran {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // A command that refuses its arguments exits without reading its input.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn exec(args: &[&str], input: &str) -> Ran {
    let mut c = runyard();
    c.arg("exec").args(args);
    with_input(c, input)
}

/// GNU parallel: CI installs it (`.ci/run`); elsewhere `apt-get install parallel`.
fn parallel(args: &[&str], input: &str) -> Ran {
    let mut c = Command::new("parallel");
    c.arg("--will-cite").args(args);
    assert!(
        Command::new("parallel").arg("--version").output().is_ok(),
        "these tests compare with GNU parallel: apt-get install parallel"
    );
    with_input(c, input)
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

const PATHS: &str = "a\nb.txt\ndir/c.tar.gz\n/abs/x.y\nwith space.txt\n.hidden\ndir.d/file\n";

#[test]
fn placeholders_fill_as_gnu_parallel_fills_them() {
    let args = [
        "-k",
        "echo",
        "{}",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "n{#}",
        "pre{}post",
    ];
    let ours = exec(&args, PATHS);
    ours.code(0);
    let theirs = parallel(&args, PATHS);
    theirs.code(0);
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn without_a_placeholder_the_input_is_appended_as_xargs_and_parallel_do() {
    let ours = exec(&["-j", "3", "echo", "got"], PATHS);
    ours.code(0);
    let mut xargs = Command::new("xargs");
    xargs.args(["-d", "\n", "-n", "1", "-P", "3", "echo", "got"]);
    let x = with_input(xargs, PATHS);
    let p = parallel(&["-j", "3", "echo", "got"], PATHS);
    assert_eq!(sorted(&ours.stdout), sorted(&x.stdout));
    assert_eq!(sorted(&ours.stdout), sorted(&p.stdout));
}

/// Per input: (exit status, output) from a job log of runyard or parallel.
fn statuses(log: &str, exitval_col: usize) -> BTreeMap<String, String> {
    log.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[exitval_col].to_string())
        })
        .collect()
}

#[test]
fn exit_statuses_match_gnu_parallel() {
    let d = Dir::new();
    let ours_log = d.path("ours.tsv");
    let theirs_log = d.path("theirs.tsv");
    let input = "0\n1\n2\n3\n0\n7\n";
    let ours = exec(
        &[
            "--max-attempts",
            "1",
            "--joblog",
            ours_log.to_str().unwrap(),
            "sh",
            "-c",
            "echo s$1; exit $1",
            "sh",
            "{}",
        ],
        input,
    );
    ours.code(1);
    let theirs = parallel(
        &[
            "--joblog",
            theirs_log.to_str().unwrap(),
            "sh",
            "-c",
            "'echo s$1; exit $1'",
            "sh",
            "{}",
        ],
        input,
    );
    assert_eq!(
        theirs.code, 4,
        "parallel exits with the number of failed jobs"
    );
    assert_eq!(sorted(&ours.stdout), sorted(&theirs.stdout));
    // runyard's log: Seq, Input, Exitval, ...; parallel's: Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, ...
    assert_eq!(
        statuses(&d.read("ours.tsv"), 2),
        statuses(&d.read("theirs.tsv"), 6)
    );
}

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
fn inputs_come_from_triple_colons_a_file_or_nul_separated_stdin() {
    let d = Dir::new();
    let f = d.write("inputs.txt", "x\ny\n");
    let a = exec(&["-k", "-a", f.to_str().unwrap(), "echo"], "");
    assert_eq!(a.stdout, "x\ny\n");
    let c = exec(&["-k", "echo", ":::", "p", "q r"], "");
    assert_eq!(c.stdout, "p\nq r\n");
    let z = exec(&["-k", "-0", "echo"], "one\0two words\0");
    assert_eq!(z.stdout, "one\ntwo words\n");
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
            vec!["sh", "-c", touch.as_str(), "out/{."],
            "unclosed placeholder `{.` in `out/{.`",
        ),
        (
            vec!["-j", "0", "sh", "-c", touch.as_str()],
            "must be at least 1",
        ),
        (
            vec!["-a", "/no/such/inputs", "sh", "-c", touch.as_str()],
            "/no/such/inputs: cannot read the input file",
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
    // its own) when i % 7 == 0, succeeds otherwise.
    let script = format!(
        r#"i=$1; mark={}/$i
if [ $((i % 7)) -eq 0 ]; then sleep 3600 & sleep 3600; fi
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
            "--timeout",
            "300ms",
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
    // No `sleep 3600` of this test is left: each timed-out group was killed.
    let left = Command::new("pgrep")
        .args(["-f", "sleep 3600"])
        .output()
        .unwrap();
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
