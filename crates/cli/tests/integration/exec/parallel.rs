//! `runyard exec` and GNU parallel on the same inputs: the same commands,
//! the same output, the same job log, the same stop when the output is
//! closed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{exec, parallel, parallel_command, sorted, with_input};
use crate::util::{runyard, wait_exit, Dir};

/// Paths with every shape `{.}`, `{/}` and `{//}` treat apart: extensions,
/// hidden files, spaces, repeated and trailing slashes, the root.
const PATHS: &str = "a\nb.txt\ndir/c.tar.gz\n/abs/x.y\nwith space.txt\n.hidden\ndir.d/file\n\
                     a//b\na/b/\na/b//\n/\n//x\nd/\n";

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
fn text_that_is_not_a_placeholder_passes_through_as_in_parallel() {
    let script = "echo ${#0} ${#1} {a} {/x} out/{. {1x} { }";
    let ours = exec(&["-k", "sh", "-c", script, "sh", "{}"], "a\nlong input\n");
    ours.code(0);
    let quoted = format!("'{script}'");
    let theirs = parallel(&["-k", "sh", "-c", &quoted, "sh", "{}"], "a\nlong input\n");
    theirs.code(0);
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(
        ours.stdout,
        "2 1 {a} {/x} out/{. {1x} { }\n2 10 {a} {/x} out/{. {1x} { }\n"
    );
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
fn several_input_sources_combine_as_in_parallel() {
    let d = Dir::new();
    let f1 = d.write("f1", "1\n2\n");
    let f2 = d.write("f2", "x\ny\nz\n");
    let (f1, f2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    // (the arguments, standard input)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["echo", "{1}", "{2}", ":::", "a", "b", ":::", "1", "2", "3"],
            "",
        ),
        (
            vec![
                "echo", "{2}", "{1}", "{-1}", ":::", "a", "b", ":::", "1", "2",
            ],
            "",
        ),
        (
            vec![
                "echo", "{}", ":::", "a", "b", ":::+", "1", "2", "3", ":::", "X", "Y",
            ],
            "",
        ),
        (
            vec!["echo", "{1/}", "{2.}", ":::", "d/a.x", ":::", "e/b.y", "c"],
            "",
        ),
        (vec!["echo", ":::", "a", "b", "c", ":::+", "1", "2"], ""),
        // `{}` of two inputs is two arguments; a missing `{3}` is none.
        (
            vec![
                "printf", "%s|", "{}", "[{3}]", "{3}", ":::", "a b", ":::", "c",
            ],
            "",
        ),
        (vec!["echo", "::::", f1, f2], ""),
        (vec!["echo", ":::", "a", "b", "::::+", f1, f2], ""),
        (vec!["-a", f1, "echo", ":::", "p", "q"], ""),
        (vec!["-a", "-", "-a", f1, "echo"], "s1\ns2\n"),
        (vec!["-a", "-", "echo", "got"], "from stdin\n"),
        (vec!["echo", "::::", f1, "-"], "in\n"),
    ];
    for (args, stdin) in cases {
        let mut ours = vec!["-k"];
        ours.extend(&args);
        // parallel hands its command line to a shell: `%s|` needs quotes.
        let theirs: Vec<&str> = ours
            .iter()
            .map(|a| if *a == "%s|" { "'%s|'" } else { a })
            .collect();
        let o = exec(&ours, stdin);
        o.code(0);
        let t = parallel(&theirs, stdin);
        t.code(0);
        assert_eq!(o.stdout, t.stdout, "{args:?}");
    }
}

#[test]
fn tag_starts_every_line_with_the_inputs_as_in_parallel() {
    let d = Dir::new();
    // Two lines, a last line without a newline, and one job with no output.
    let script = d.write(
        "lines.sh",
        "[ \"$1\" = none ] && exit 0\nprintf 'x%s\\ny\\n' \"$1\"\nprintf z\n",
    );
    let script = script.to_str().unwrap();
    for args in [
        vec!["sh", script, "{}", ":::", "a", "none", "b c"],
        vec!["sh", script, "{2}", ":::", "a", "b", ":::", "1", "2"],
    ] {
        let mut all = vec!["-k", "--tag"];
        all.extend(&args);
        let ours = exec(&all, "");
        ours.code(0);
        let theirs = parallel(&all, "");
        theirs.code(0);
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
        assert!(ours.stdout.starts_with("a"), "{}", ours.stdout);
        assert!(ours.stdout.contains("\ty\n"), "{}", ours.stdout);
    }
}

#[test]
fn dry_run_prints_each_command_as_parallel_quotes_it_and_runs_nothing() {
    let d = Dir::new();
    let inputs = "with space\nit's\na$b\n\nx;y\n'q'\nplain/p.q\n";
    let args = ["--dry-run", "-k", "echo", "{}", "x{/}", "{#}"];
    let ours = exec(&args, inputs);
    ours.code(0);
    let theirs = parallel(&args, inputs);
    theirs.code(0);
    assert_eq!(ours.stdout, theirs.stdout);
    let tagged = ["--dry-run", "--tag", "-k", "echo", ":::", "a", "b"];
    assert_eq!(exec(&tagged, "").stdout, parallel(&tagged, "").stdout);
    let marker = d.path("ran");
    let r = exec(&["--dry-run", "touch", marker.to_str().unwrap()], "1\n");
    r.code(0);
    assert_eq!(r.stdout, format!("touch {} 1\n", marker.display()));
    assert!(!marker.exists(), "--dry-run ran a command");
}

/// A job log's lines by Seq, as columns.
fn rows(log: &str) -> BTreeMap<String, Vec<String>> {
    log.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(str::to_string).collect();
            (f[0].clone(), f)
        })
        .collect()
}

#[test]
fn the_job_log_has_parallels_columns_and_values() {
    let d = Dir::new();
    let ours_log = d.path("ours.tsv");
    let theirs_log = d.path("theirs.tsv");
    let input = "0\n1\n2\n3\nkill\n0\n7\n";
    let script = "[ $1 = kill ] && kill -9 $$; echo s$1; exit $1";
    let ours = exec(
        &[
            "--joblog",
            ours_log.to_str().unwrap(),
            "sh",
            "-c",
            script,
            "sh",
            "{}",
        ],
        input,
    );
    ours.code(1);
    let quoted = format!("'{script}'");
    let theirs = parallel(
        &[
            "--joblog",
            theirs_log.to_str().unwrap(),
            "sh",
            "-c",
            &quoted,
            "sh",
            "{}",
        ],
        input,
    );
    assert_eq!(
        theirs.code, 5,
        "parallel exits with the number of failed jobs"
    );
    assert_eq!(sorted(&ours.stdout), sorted(&theirs.stdout));

    let (ours_text, theirs_text) = (d.read("ours.tsv"), d.read("theirs.tsv"));
    let header = |t: &str| -> Vec<String> {
        t.lines()
            .next()
            .unwrap()
            .split('\t')
            .map(str::to_string)
            .collect()
    };
    let (h_ours, h_theirs) = (header(&ours_text), header(&theirs_text));
    assert_eq!(
        h_ours[..h_theirs.len()],
        h_theirs[..],
        "parallel's columns first"
    );
    assert_eq!(h_ours[h_theirs.len()..], ["Attempts"], "then runyard's");
    let (ours_rows, theirs_rows) = (rows(&ours_text), rows(&theirs_text));
    assert_eq!(ours_rows.len(), 7);
    assert_eq!(
        ours_rows.keys().collect::<Vec<_>>(),
        theirs_rows.keys().collect::<Vec<_>>()
    );
    let col = |name: &str| h_theirs.iter().position(|h| h == name).unwrap();
    for (seq, o) in &ours_rows {
        let t = &theirs_rows[seq];
        for name in ["Host", "Send", "Receive", "Exitval", "Signal", "Command"] {
            assert_eq!(o[col(name)], t[col(name)], "{name} of job {seq}");
        }
        let (start, runtime) = (&o[col("Starttime")], &o[col("JobRuntime")]);
        let decimals3 = |s: &str| {
            s.split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && b.len() == 3)
        };
        assert!(decimals3(start), "Starttime `{start}`");
        assert!(
            runtime.len() == 10 && decimals3(runtime.trim_start()),
            "JobRuntime `{runtime}` is %10.3f"
        );
        assert_eq!(o[h_theirs.len()], "1", "one attempt");
    }
    assert_eq!(ours_rows["5"][col("Signal")], "9", "killed by SIGKILL");
}

/// The exit status as a shell reports it: a signal is 128 + its number.
fn shell_status(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// `seq 50 | runner -j1 ... | head -1`: the first job prints at once, the
/// others wait for `go`, made once the reader is gone. Returns the exit
/// status and how many jobs started.
fn stopped_by_head(mut runner: Command, d: &Dir, tag: &str) -> (i32, usize) {
    let started = d.path(&format!("started-{tag}"));
    std::fs::create_dir(&started).unwrap();
    let go = d.path(&format!("go-{tag}"));
    let script = format!(
        "touch {}/$1; echo $1; [ $1 = 1 ] || while [ ! -e {} ]; do sleep 0.01; done",
        started.display(),
        go.display()
    );
    let quoted = format!("'{script}'");
    let is_parallel = tag == "parallel";
    runner.args(["-j", "1", "sh", "-c"]);
    runner.arg(if is_parallel { &quoted } else { &script });
    runner.args(["sh", "{}"]);
    let input: String = (1..=50).map(|i| format!("{i}\n")).collect();
    let input_file = d.write(&format!("inputs-{tag}"), &input);
    runner
        .stdin(std::fs::File::open(input_file).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = runner.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "1\n");
    // The reader is gone (dropped above), as `head -1` leaves.
    std::fs::write(&go, "").unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{tag} did not stop after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let count = std::fs::read_dir(&started).unwrap().count();
    (shell_status(status), count)
}

#[test]
fn a_closed_stdout_stops_the_run_and_exits_141_as_parallel_does() {
    let d = Dir::new();
    let mut ours = runyard();
    ours.arg("exec");
    let (code, started) = stopped_by_head(ours, &d, "runyard");
    let (theirs_code, theirs_started) = stopped_by_head(parallel_command(), &d, "parallel");
    assert_eq!(theirs_code, 141);
    assert!(theirs_started < 50);
    assert_eq!(code, 141);
    assert!(
        started < 50,
        "every job ran although nobody read their output ({started})"
    );
    // Nothing is printed to a closed output in --dry-run either.
    let mut dry = runyard();
    dry.args(["exec", "--dry-run", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = dry.spawn().unwrap();
    drop(child.stdout.take());
    let input: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes());
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), 141);
}
