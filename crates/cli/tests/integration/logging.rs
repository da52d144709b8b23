//! The command's log (docs/tracing.md): `--log-format json` makes every
//! log line a JSON object with the attempt's span; by default nothing new
//! is printed; bad values are usage errors.

use std::process::Stdio;

use crate::util::{runyard, Ran};

fn run_env(env: Option<&str>, args: &[&str]) -> Ran {
    let mut c = runyard();
    c.args(args).stdin(Stdio::null()).env_remove("RUNYARD_LOG");
    if let Some(v) = env {
        c.env("RUNYARD_LOG", v);
    }
    Ran::from(c.output().expect("runyard starts"))
}

#[test]
fn json_log_lines_carry_the_level_target_message_and_the_attempts_span() {
    let ran = run_env(
        Some("runyard::attempt=debug"),
        &[
            "--log-format",
            "json",
            "run",
            "fail:k=1",
            "--backoff",
            "none",
            "-q",
        ],
    );
    ran.code(0);
    let lines: Vec<serde_json::Value> = ran
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    for l in &lines {
        for key in ["timestamp", "level", "target", "message", "job"] {
            assert!(l.get(key).is_some(), "{key} in {l}");
        }
        assert_eq!(l["target"], "runyard::attempt", "{l}");
        assert_eq!(l["span"]["name"], "runyard.attempt", "{l}");
        assert_eq!(l["span"]["task"], "fail", "{l}");
        assert_eq!(l["span"]["job"], l["job"], "{l}");
        assert_eq!(l["span"]["mode"], "thread", "{l}");
    }
    let seen: Vec<(&str, &str, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap(),
                l["message"].as_str().unwrap(),
                l["span"]["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("DEBUG", "claimed", 1),
            ("DEBUG", "started", 1),
            ("WARN", "retry scheduled", 1),
            ("DEBUG", "claimed", 2),
            ("DEBUG", "started", 2),
            ("INFO", "succeeded", 2),
        ],
        "{}",
        ran.stderr
    );
    let retry = &lines[2];
    assert_eq!(retry["outcome"], "failed");
    assert_eq!(retry["span"]["outcome"], "failed");
    assert!(retry["delay_ms"].is_number(), "{retry}");
    assert!(retry["span"]["duration_ms"].is_number(), "{retry}");
}

#[test]
fn text_log_lines_say_runyard_message_and_the_fields() {
    let ran = run_env(
        Some("runyard::attempt=info"),
        &["run", "fail:k=1", "--backoff", "none", "-q"],
    );
    ran.code(0);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ran.stderr);
    assert!(
        lines[0].starts_with("runyard: retry scheduled job=1 outcome=\"failed\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(" task=\"fail\" attempt=1 mode=\"thread\" worker="),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("runyard: succeeded job=1 "),
        "{}",
        lines[1]
    );
}

/// With `RUNYARD_LOG` unset (or empty) the command prints what it always
/// did: no line for jobs and attempts, whatever the format.
#[test]
fn by_default_nothing_more_is_printed() {
    for env in [None, Some("")] {
        for format in ["text", "json"] {
            let ran = run_env(
                env,
                &[
                    "--log-format",
                    format,
                    "run",
                    "fail:k=1",
                    "--backoff",
                    "none",
                    "-q",
                ],
            );
            ran.code(0);
            assert_eq!(ran.stderr, "", "{env:?} {format}");
        }
    }
}

#[test]
fn a_bad_log_format_or_filter_is_a_usage_error_saying_what_is_valid() {
    let ran = run_env(None, &["--log-format", "yaml", "run", "noop"]);
    ran.code(2);
    assert!(
        ran.stderr.contains("[possible values: text, json]"),
        "{}",
        ran.stderr
    );
    let ran = run_env(Some("runyard=loud"), &["run", "noop"]);
    ran.code(2);
    assert!(
        ran.stderr
            .starts_with("error: RUNYARD_LOG=\"runyard=loud\" is not a log filter ("),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("error, warn, info, debug, trace, off"),
        "{}",
        ran.stderr
    );
}
