//! `runyard bench curve` and the script that plots it (scripts/plot_bench.py),
//! and `bench queue --later`, at tiny sizes: what the lines carry, not how
//! fast anything is.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{run, Dir};

const PLOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/plot_bench.py");

#[test]
fn curve_prints_one_complete_line_per_workload_and_count_and_the_script_plots_them() {
    let dir = Dir::new();
    let db = dir.path("curve.db");
    let queue = format!("sqlite://{}", db.display());
    let r = run(&[
        "bench",
        "curve",
        "--sizes",
        "1e3,100",
        "--shell-max",
        "100",
        "--queue",
        &queue,
    ]);
    r.code(0);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // Counts in ascending order; shell only up to --shell-max; B7 on the
    // SQLite file given, instead of a scratch one.
    let seen: Vec<(String, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["curve_workload"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("noop-thread", 100),
        ("queue", 100),
        ("shell", 100),
        ("noop-thread", 1000),
        ("queue", 1000),
    ]
    .iter()
    .map(|(w, n)| (w.to_string(), *n))
    .collect();
    assert_eq!(seen, want, "{}", r.stdout);
    assert!(db.exists(), "B7 ran on the file given with --queue");
    for l in &lines {
        for field in [
            "workload",
            "peer",
            "tasks",
            "wall_s",
            "tasks_per_s",
            "peak_rss_mb",
            "cores",
            "size",
            "run",
            "rate_of",
            "peak_rss_of",
        ] {
            assert!(!l[field].is_null(), "no `{field}` in {l}");
        }
        assert_eq!(l["tasks"], l["size"], "{l}");
        assert_eq!(l["run"], 1, "{l}");
        assert!(l["tasks_per_s"].as_f64().unwrap() > 0.0, "{l}");
        assert!(l["peak_rss_mb"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["loadavg"].as_array().map(Vec::len), Some(3), "{l}");
        if l["curve_workload"] == "queue" {
            assert_eq!(l["queue"], "sqlite", "{l}");
            assert!(!l["enqueue_per_s"].is_null(), "{l}");
            assert!(!l["p50_latency_ms"].is_null(), "{l}");
        }
    }

    // The script's table: a row per workload (and queue), a column per count.
    let table = plot(&r.stdout, &[]);
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    let rows: Vec<&str> = table
        .stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), 2 + 3, "{}", table.stdout);
    assert!(rows[0].contains("| 100 jobs | 10^3 jobs |"), "{}", rows[0]);
    for name in ["B1 noop-thread", "B7 queue (sqlite)", "B6 shell"] {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("| {name} |"))),
            "no row for {name}:\n{}",
            table.stdout
        );
    }

    // The plot, where matplotlib is at hand (the script installs none here).
    let png = dir.path("curve.png");
    let p = plot(&r.stdout, &["--no-install", "--png", png.to_str().unwrap()]);
    match p.code {
        Some(0) => {
            let bytes = std::fs::read(&png).expect("the PNG was written");
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        }
        Some(3) => {
            eprintln!("skipping the PNG check: {}", p.stderr.trim());
        }
        other => panic!("plot_bench.py --png exited {other:?}: {}", p.stderr),
    }
}

/// With `--later`, the jobs stay scheduled and undrained while the idle
/// latency is taken: the line says so, and the file still holds them.
#[test]
fn bench_queue_later_leaves_its_jobs_scheduled_and_says_so() {
    let dir = Dir::new();
    let db = dir.path("later.db");
    let queue = format!("sqlite://{}", db.display());
    let r = run(&[
        "bench",
        "queue",
        "--n",
        "300",
        "--samples",
        "3",
        "--later",
        "--queue",
        &queue,
    ]);
    r.code(0);
    let l: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        l["workload"], "B7 queue, scheduled for later (not drained)",
        "{l}"
    );
    assert_eq!(l["later"], true, "{l}");
    assert_eq!(l["latency_samples"], 3, "{l}");
    let s = run(&["status", "--queue", &queue, "--json"]);
    s.code(0);
    let counts: Value = serde_json::from_str(s.stdout.trim()).unwrap();
    assert_eq!(counts["counts"]["scheduled"], 300, "{counts}");
    assert_eq!(counts["counts"]["succeeded"], 3, "{counts}");
}

#[test]
fn curve_refuses_bad_counts_before_running_anything() {
    for (sizes, says) in [
        ("1e4,x", "`x` is not a job count"),
        ("0", "at least 1"),
        ("1.5", "not a job count"),
        ("1e40", "too many jobs"),
    ] {
        let r = run(&["bench", "curve", "--sizes", sizes]);
        r.code(2);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(r.stderr.contains(says), "{sizes}: {}", r.stderr);
    }
    let r = run(&["bench", "curve", "--workloads", "noop"]);
    r.code(2);
    assert!(r.stderr.contains("noop-thread"), "{}", r.stderr);
}

#[test]
fn the_plot_script_names_what_is_wrong_with_its_input() {
    let p = plot("{\"workload\": \"B1 noop-thread\"}\n", &[]);
    assert_eq!(p.code, Some(2), "{}", p.stderr);
    assert!(p.stderr.contains("-:1: no curve_workload"), "{}", p.stderr);
    let p = plot("not json\n", &[]);
    assert_eq!(p.code, Some(2), "{}", p.stderr);
    assert!(p.stderr.contains("-:1:1: not a JSON line"), "{}", p.stderr);
}

struct Plotted {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs scripts/plot_bench.py on `lines` given on its standard input.
fn plot(lines: &str, args: &[&str]) -> Plotted {
    let mut child = Command::new("python3")
        .arg(PLOT)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Plotted {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
