//! `runyard list` and `runyard describe`.

use crate::util::run;

#[test]
fn list_names_every_built_in_with_its_kind() {
    let r = run(&["list"]);
    r.code(0);
    for (task, kind) in [
        ("cpu", "cpu"),
        ("sleep", "async"),
        ("io", "async"),
        ("fail", "cpu"),
        ("noop", "cpu"),
    ] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(task))
            .unwrap_or_else(|| panic!("{task} is listed:\n{}", r.stdout));
        assert_eq!(line.split_whitespace().nth(1), Some(kind), "{line}");
    }
    let json: serde_json::Value = serde_json::from_str(&run(&["list", "--json"]).stdout).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"cpu") && names.contains(&"fail"),
        "{names:?}"
    );
}

#[test]
fn describe_shows_parameters_defaults_constraints_and_policy() {
    let r = run(&["describe", "cpu"]);
    r.code(0);
    let n = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("n "))
        .expect("a line for n");
    assert!(
        n.contains("integer") && n.contains("default 10000000") && n.contains("must be >= 1"),
        "{n}"
    );
    assert!(r.stdout.contains("max_attempts  3"), "{}", r.stdout);
    assert!(
        r.stdout.contains("backoff       exponential:100ms,cap=1m"),
        "{}",
        r.stdout
    );
    let j: serde_json::Value =
        serde_json::from_str(&run(&["describe", "fail", "--json"]).stdout).unwrap();
    assert_eq!(j["name"], "fail");
    let fields = j["params"]["fields"].as_array().unwrap();
    let k = fields.iter().find(|f| f["name"] == "k").unwrap();
    assert_eq!(k["type"], "integer");
    assert_eq!(k["rust_type"], "Option<u32>");
    assert_eq!(k["required"], false);
}

#[test]
fn describe_names_types_and_durations_as_a_job_writes_them() {
    let r = run(&["describe", "shell"]);
    r.code(0);
    let field = |name: &str| -> Vec<String> {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("a line for {name}:\n{}", r.stdout));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(field("kill_grace")[1..], ["duration", "default", "2s"]);
    assert_eq!(
        field("env")[1..],
        ["map", "of", "string", "to", "string", "default", "{}"]
    );
    assert_eq!(field("cwd")[1..], ["path", "optional"]);
    assert_eq!(field("ok_codes")[1..4], ["list", "of", "integers"]);
    let sleep = run(&["describe", "sleep"]).stdout;
    assert!(sleep.contains("duration         default 1s"), "{sleep}");
    let j: serde_json::Value =
        serde_json::from_str(&run(&["describe", "shell", "--json"]).stdout).unwrap();
    let grace = j["params"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "kill_grace")
        .unwrap();
    assert_eq!(
        (&grace["type"], &grace["default"]),
        (&serde_json::json!("duration"), &serde_json::json!("2s"))
    );
}

#[test]
fn the_cpu_output_is_a_decimal_string() {
    // 64 bits: as a JSON number it would be rounded by readers that hold
    // numbers as doubles.
    let r = run(&["run", "cpu:n=3", "--json", "-", "-q"]);
    r.code(0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let out = report["jobs"][0]["output"].as_str().expect("a string");
    let mut x = 0u64;
    for _ in 0..3 {
        x = runyard_builtins::splitmix64(x);
    }
    assert_eq!(out, x.to_string());
}

/// `http` from the command line, in auto mode, against a server that
/// answers 503 once, then 200.
#[test]
fn http_jobs_run_from_the_command_line() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
            );
        }
    });
    let job = format!("http:url={url}");
    let r = run(&["run", &job, "--backoff", "none", "--json", "-", "-q"]);
    r.code(0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let j = &report["jobs"][0];
    assert_eq!(j["attempts"][0]["outcome"], "failed");
    assert_eq!(j["output"]["status"], 200);
    assert_eq!(j["output"]["bytes"], 2);
}

#[test]
fn help_texts_point_at_what_exists_and_offer_what_works() {
    let bench = run(&["bench", "--help"]).stdout;
    assert!(bench.contains("docs/BENCHMARKS.md"), "{bench}");
    assert!(!bench.contains("BENCH.md"), "{bench}");
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md");
    let text = std::fs::read_to_string(docs).expect("docs/BENCHMARKS.md exists");
    for workload in [
        "noop-thread",
        "sleep-async",
        "sleep-thread",
        "cpu-scale",
        "noop-process",
        "shell",
        "seed",
        "queue",
        "dag",
        "curve",
    ] {
        assert!(
            text.contains(&format!("runyard bench {workload}")),
            "docs/BENCHMARKS.md says what `{workload}` is"
        );
    }
    // `run` refuses a PostgreSQL queue, so its help does not offer one.
    let run_help = run(&["run", "--help"]).stdout;
    let queue = run_help
        .split("--queue <URL>")
        .nth(1)
        .expect("--queue is described");
    let queue = &queue[..queue.find("\n\n").unwrap_or(queue.len())];
    assert!(!queue.contains("postgres://"), "{queue}");
    assert!(queue.contains("sqlite://PATH"), "{queue}");
    // `status` reads a run, it does not record one.
    let status = run(&["status", "--help"]).stdout;
    let state = status.lines().find(|l| l.contains("--state")).unwrap();
    assert!(!state.contains("Record"), "{state}");
    assert!(state.contains("Show the run recorded"), "{state}");
}
