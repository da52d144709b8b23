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
        n.contains("u64") && n.contains("default 10000000") && n.contains("must be >= 1"),
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
    assert_eq!(k["type"], "Option<u32>");
    assert_eq!(k["required"], false);
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
