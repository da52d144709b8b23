//! The job syntax and job files: what is read, what is refused and how it
//! is told, and a property test over arbitrary input; workflows in
//! [`workflow`].

use std::path::Path;

use runyard::Timestamp;

use super::*;

#[test]
fn job_args_read_params_counts_and_json_values() {
    let (s, n) = parse_job_arg("cpu").unwrap();
    assert_eq!((s.task.as_str(), n, s.params.as_json()), ("cpu", 1, "{}"));
    let (s, n) = parse_job_arg("sleep:duration=250ms*4").unwrap();
    assert_eq!((s.task.as_str(), n), ("sleep", 4));
    assert_eq!(
        s.params.to_value(),
        serde_json::json!({"duration": "250ms"})
    );
    let (s, _) = parse_job_arg(r#"x:k=2,permanent=true,tags=["a,b",1],name="q,r""#).unwrap();
    assert_eq!(
        s.params.to_value(),
        serde_json::json!({"k": 2, "permanent": true, "tags": ["a,b", 1], "name": "q,r"})
    );
}

#[test]
fn bad_job_args_say_what_is_expected() {
    assert!(parse_job_arg(":n=1")
        .unwrap_err()
        .contains("missing the task name"));
    assert!(parse_job_arg("cpu:n")
        .unwrap_err()
        .contains("expected KEY=VALUE, got `n`"));
    assert!(parse_job_arg("cpu:n=1,n=2")
        .unwrap_err()
        .contains("given twice"));
    assert!(parse_job_arg("cpu*0").unwrap_err().contains("at least 1"));
}

fn engine() -> Engine {
    Engine::new(
        crate::default_registry().unwrap(),
        runyard::EngineConfig::default(),
    )
}

/// A job file's text, checked as if read from `jobs.toml`.
fn file(text: &str) -> Result<Vec<Prepared>, InputError> {
    files(&[text]).map(|j| j.list)
}

/// Job files' texts, checked and ordered as if read from `jobs.toml`,
/// `jobs2.toml`, ...
fn files(texts: &[&str]) -> Result<Jobs, InputError> {
    let files = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = if i == 0 {
                "jobs.toml".to_string()
            } else {
                format!("jobs{}.toml", i + 1)
            };
            (PathBuf::from(name), t.to_string())
        })
        .collect();
    collect(&engine(), &[], files, &JobOptions::default(), Uses::Now)
}

fn args(args: &[&str]) -> Result<Vec<Prepared>, InputError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    from_args(
        &engine(),
        &args,
        &JobOptions::default(),
        &mut Tally::default(),
        Uses::Now,
    )
}

#[test]
fn counts_after_a_star_are_whole_numbers_up_to_the_cap() {
    let cap = MAX_JOBS.to_string();
    assert_eq!(
        parse_job_arg(&format!("noop*{cap}")).unwrap().1 as u64,
        MAX_JOBS
    );
    for bad in ["cpu*-1", "cpu*1.5", "cpu*abc", "cpu*1e3"] {
        let e = parse_job_arg(bad).unwrap_err();
        assert!(
            e.contains(&format!("must be a whole number from 1 to {cap}, got `")),
            "{bad}: {e}"
        );
    }
    assert!(parse_job_arg("cpu*")
        .unwrap_err()
        .contains("missing the count"));
    for big in [
        "noop*100000001",
        "noop*4294967295",
        "noop*99999999999999999999999",
    ] {
        let e = parse_job_arg(big).unwrap_err();
        assert!(e.contains(&format!("at most {cap} jobs")), "{big}: {e}");
    }
    // A `*` in a value that is not followed by a number is the value's.
    let (s, n) = parse_job_arg("shell:cmd=ls *.txt,shell=true").unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.params.to_value()["cmd"], "ls *.txt");
    let (s, n) = parse_job_arg(r#"shell:cmd="a*b"*2"#).unwrap();
    assert_eq!((n, s.params.to_value()["cmd"].as_str()), (2, Some("a*b")));
}

#[test]
fn the_cap_holds_for_all_counts_of_a_command_together() {
    let half = (MAX_JOBS / 2).to_string();
    assert!(args(&[&format!("noop*{half}"), &format!("noop*{half}")]).is_ok());
    let e = args(&[&format!("noop*{half}"), &format!("noop*{half}"), "noop"]).unwrap_err();
    assert_eq!(e.location, "job `noop` (argument 3)");
    assert!(
        e.message.contains(&format!("{} jobs", MAX_JOBS + 1))
            && e.message
                .contains(&format!("at most {MAX_JOBS} jobs per command")),
        "{e}"
    );
    // Counts in files add to those on the command line.
    let mut tally = Tally::default();
    let engine = engine();
    let flags = JobOptions::default();
    from_args(
        &engine,
        &[format!("noop*{MAX_JOBS}")],
        &flags,
        &mut tally,
        Uses::Now,
    )
    .unwrap();
    let src = Source {
        path: Path::new("jobs.toml"),
        text: "[[job]]\ntask = \"noop\"\ncount = 2\n",
    };
    let e = from_text(
        &engine,
        &src,
        0,
        &flags,
        &mut tally,
        &mut Vec::new(),
        Uses::Now,
    )
    .unwrap_err();
    assert_eq!(e.location, "jobs.toml:3:9");
    assert!(
        e.message.contains("at most 100000000 jobs per command"),
        "{e}"
    );
}

#[test]
fn run_at_is_a_toml_date_time_or_a_string_with_an_offset() {
    let at = |text: &str| file(text).map(|p| p[0].job.run_at);
    let ten_utc = Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
    for v in [
        "2026-11-25T10:00:00Z",
        "2026-11-25 10:00:00Z",
        "2026-11-25T11:00:00+01:00",
        "2026-11-25T08:30:00-01:30",
        "\"2026-11-25T10:00:00Z\"",
        "\"2026-11-25T12:00:00+02:00\"",
    ] {
        let text = format!("[[job]]\ntask = \"noop\"\nrun_at = {v}\n");
        assert_eq!(at(&text).unwrap(), Some(ten_utc), "{v}");
    }
    let e = at("[[job]]\ntask = \"noop\"\nrun_at = 2026-11-25T10:00:00\n").unwrap_err();
    assert_eq!(e.location, "jobs.toml:3:10");
    assert!(e.message.contains("has no time zone: add Z for UTC"), "{e}");
    let e = at("[[job]]\ntask = \"noop\"\nrun_at = \"tomorrow\"\n").unwrap_err();
    assert!(
        e.message
            .contains("expected a date and time with Z or an offset, e.g. 2026-11-25T10:00:00Z"),
        "{e}"
    );
}

#[test]
fn numbers_in_a_file_say_what_they_accept() {
    let e = file("[[job]]\ntask = \"noop\"\ncount = 4294967295\n").unwrap_err();
    assert_eq!(e.location, "jobs.toml:3:9");
    assert_eq!(
        e.message,
        "invalid value: integer `4294967295`, expected a whole number from 1 to 100000000 \
         (the most jobs one command may run)"
    );
    let e = file("[[job]]\ntask = \"noop\"\ncount = 99999999999999999999\n").unwrap_err();
    assert!(!e.message.contains("i128"), "{e}");
    assert!(e.message.contains("integer `99999999999999999999`"), "{e}");
    let e = file("[defaults]\nmax_attempts = 1.5\n[[job]]\ntask = \"noop\"\n").unwrap_err();
    assert_eq!(
        e.message,
        "invalid type: floating point `1.5`, expected a whole number from 1 to 4294967295"
    );
    let e = file("[[job]]\ntask = \"noop\"\npriority = 3000000000\n").unwrap_err();
    assert!(
        e.message
            .ends_with("expected a whole number from -2147483648 to 2147483647"),
        "{e}"
    );
    let e = file("[[job]]\ntask = \"cpu\"\nparams = { n = 99999999999999999999 }\n").unwrap_err();
    assert_eq!(e.location, "jobs.toml:3:16");
    assert!(
        e.message
            .starts_with("the integer 99999999999999999999 is too large"),
        "{e}"
    );
    // Parameters up to 2^64 - 1 are TOML's and JSON's both.
    let p = file("[[job]]\ntask = \"cpu\"\nparams = { seed = 18446744073709551615 }\n").unwrap();
    assert_eq!(p[0].job.params.to_value()["seed"], u64::MAX);
}

#[test]
fn a_mode_of_another_type_says_which_values_mode_takes() {
    for text in [
        "[[job]]\ntask = \"noop\"\nmode = 1\n",
        "[defaults]\nmode = true\n[[job]]\ntask = \"noop\"\n",
    ] {
        let e = file(text).unwrap_err();
        assert!(
            e.message
                .ends_with("expected a mode: one of `auto`, `thread`, `process`, `async`"),
            "{e}"
        );
    }
    let e = file("[[job]]\ntask = \"noop\"\nmode = \"bogus\"\n").unwrap_err();
    assert_eq!(
        e.message,
        "unknown variant `bogus`, expected one of `auto`, `thread`, `process`, `async`"
    );
    let p = file("[[job]]\ntask = \"noop\"\nmode = \"thread\"\n").unwrap();
    assert_eq!(p[0].job.settings.mode, runyard::Mode::Thread);
    let names: Vec<&str> = runyard::Mode::ALL.iter().map(|m| m.as_str()).collect();
    assert_eq!(names, fields::MODE_NAMES);
}

#[test]
fn a_long_line_is_shown_around_the_error() {
    let long = "x".repeat(200_000);
    let text = format!("[[job]]\ntask = \"noop\"\nidempotency_key = \"{long}\" oops\n");
    let e = file(&text).unwrap_err();
    let shown = e.to_string();
    assert!(shown.len() < 1_000, "{} bytes", shown.len());
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("jobs.toml:3:"), "{shown}");
    // The caret still points under the text at fault.
    let (code, caret) = (lines[2], lines[3]);
    let at = caret.find('^').unwrap();
    let under: String = code.chars().skip(at).take(4).collect();
    assert_eq!(under, "oops", "{shown}");
    assert!(code.contains('…'), "{shown}");
    // Command-line arguments are cut short too.
    let e = args(&[&format!("cpu:n={long}")]).unwrap_err();
    assert!(e.to_string().len() < 1_000);
}

#[test]
fn the_example_job_files_are_valid() {
    for text in [
        include_str!("../../../../examples/jobs/mixed.toml"),
        include_str!("../../../../examples/jobs/urls.toml"),
        include_str!("../../../../examples/jobs/etl.toml"),
    ] {
        assert!(file(text).is_ok(), "{}", file(text).unwrap_err());
    }
}

mod workflow;

#[test]
fn flow_keys_of_a_file_reach_the_job() {
    let jobs = file(
        "[defaults]\nconcurrency_key = \"tenant:1\"\nconcurrency = 2\n\n\
         [[job]]\ntask = \"noop\"\nunique_key = \"k\"\nunique_for = \"1h\"\n\
         on_conflict = \"replace\"\nrate_key = \"api\"\nrate = \"50/s\"\n\n\
         [[job]]\ntask = \"noop\"\nconcurrency_key = \"tenant:2\"\n",
    )
    .unwrap();
    let j = &jobs[0].job;
    let u = j.unique.as_ref().unwrap();
    assert_eq!(u.key, "k");
    assert_eq!(u.within, Some(Duration::from_secs(3600)));
    assert_eq!(u.on_conflict, runyard_core::OnConflict::Replace);
    let (k, n) = j.limits.concurrency_key.as_ref().unwrap();
    assert_eq!((k.to_string(), *n), ("tenant:1".to_string(), Some(2)));
    let (k, r) = j.limits.rate_key.as_ref().unwrap();
    assert_eq!(
        (k.to_string(), r.unwrap().to_string()),
        ("api".into(), "50/s".into())
    );
    // The job's own key beats the default's; the default's limit stays.
    let (k, n) = jobs[1].job.limits.concurrency_key.as_ref().unwrap();
    assert_eq!((k.to_string(), *n), ("tenant:2".to_string(), Some(2)));
    assert!(jobs[1].job.unique.is_none());
}

#[test]
fn bad_flow_keys_say_where_and_what_is_valid() {
    for (text, at, says) in [
        (
            "[[job]]\ntask = \"noop\"\nrate_key = \"a\"\nrate = \"0/s\"\n",
            "jobs.toml:4:8",
            "at least 1",
        ),
        (
            "[[job]]\ntask = \"noop\"\nrate_key = \"a\"\nrate = \"ten/s\"\n",
            "jobs.toml:4:8",
            "COUNT/s, COUNT/m or COUNT/h",
        ),
        (
            "[[job]]\ntask = \"noop\"\nrate_key = \"a\"\nrate = 10\n",
            "jobs.toml:4:8",
            "e.g. \"100/s\"",
        ),
        (
            "[[job]]\ntask = \"noop\"\nconcurrency_key = \"t\"\nconcurrency = 0\n",
            "jobs.toml:4:15",
            "from 1 to",
        ),
        (
            "[[job]]\ntask = \"noop\"\nconcurrency = 2\n",
            "jobs.toml:3:15",
            "has none",
        ),
        (
            "[[job]]\ntask = \"noop\"\nunique_for = \"1h\"\n",
            "jobs.toml:1:1",
            "needs a `unique_key`",
        ),
        (
            "[[job]]\ntask = \"noop\"\nunique_key = \"k\"\non_conflict = \"merge\"\n",
            "jobs.toml:4:15",
            "\"skip\"",
        ),
        (
            "[[job]]\ntask = \"noop\"\nconcurrency_key = \"a b\"\n",
            "jobs.toml:3:19",
            "NAME or NAME:VALUE",
        ),
        (
            "[[job]]\ntask = \"noop\"\n[limits.nope]\nconcurrency = 1\n",
            "jobs.toml:3:1",
            "unknown task `nope`",
        ),
        (
            "[[job]]\ntask = \"noop\"\n[limits.noop]\n",
            "jobs.toml:3:1",
            "sets nothing",
        ),
        (
            "[[job]]\ntask = \"noop\"\n[limits.noop]\nlimit = 1\n",
            "jobs.toml:4:1",
            "unknown field",
        ),
        (
            "[[job]]\ntask = \"noop\"\n[limits.noop]\nrate = \"0/m\"\n",
            "jobs.toml:4:8",
            "at least 1",
        ),
    ] {
        let e = file(text).unwrap_err();
        assert_eq!(e.location, at, "{text}: {e}");
        assert!(e.message.contains(says), "{text}: {e}");
    }
}

#[test]
fn a_runs_limits_go_to_its_tasks_jobs_and_submit_refuses_them() {
    let mut jobs = files(&[
        "[[job]]\ntask = \"noop\"\ncount = 2\n\n[[job]]\ntask = \"fail\"\n",
        "[limits.noop]\nconcurrency = 3\nrate = \"5/m\"\n",
    ])
    .unwrap();
    let e = jobs.refuse_limits().unwrap_err();
    assert_eq!(e.location, "jobs2.toml:1:1");
    assert!(
        e.message.contains("runyard limit --queue URL --task noop"),
        "{e}"
    );
    jobs.apply_limits();
    let noop = &jobs.list[0].job.limits;
    assert_eq!(noop.task_concurrency, Some(3));
    assert_eq!(noop.task_rate.unwrap().to_string(), "5/m");
    assert!(jobs.list[1].job.limits.is_empty());
    let e = files(&[
        "[limits.noop]\nconcurrency = 1\n",
        "[limits.noop]\nconcurrency = 2\n",
    ])
    .unwrap_err();
    assert!(e.message.contains("more than one job file"), "{e}");
}

/// Arbitrary input, and valid input mutated at random, never panics
/// the parsers, and each rejection says where: the argument, or the
/// file's line and column (or the file, for a file without jobs).
mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;

    const ARGS: &[&str] = &[
        "cpu",
        "cpu:n=5000",
        "sleep:duration=250ms*4",
        "fail:k=2,permanent=true",
        r#"shell:cmd=["echo","a,b"],shell=false*2"#,
        r#"x:k=2,tags=["a,b",1],name="q,r""#,
        "noop*100000000",
    ];

    const FILES: &[&str] = &[
        "[defaults]\nmax_attempts = 3\ntimeout = \"30s\"\n\n[[job]]\ntask = \"cpu\"\nparams = { n = 5000 }\ncount = 4\n",
        "[[job]]\ntask = \"fail\"\nmax_attempts = 2\nbackoff = \"fixed:1s\"\npriority = -3\nparams = { k = 1, permanent = false }\n",
        "[[job]]\ntask = \"noop\"\nrun_at = 2026-11-25T10:00:00Z\nidempotency_key = \"é\"\nisolate = false\n\n[[job]]\ntask = \"sleep\"\nparams.duration = \"1ms\"\nmode = \"async\"\n",
    ];

    /// Bits of syntax worth splicing in.
    const PIECES: &[&str] = &[
        "*",
        ":",
        "=",
        ",",
        "\"",
        "[",
        "]",
        "{",
        "}",
        "\n",
        "#",
        "'",
        "\\",
        "é",
        "\u{0}",
        "\r",
        "4294967295",
        "-1",
        "1.5",
        "99999999999999999999",
        "[[job]]",
        "task",
        "count",
        "params",
        "run_at",
        "2026-11-25T10:00:00",
        "true",
        "nan",
        "inf",
    ];

    /// `text` with each edit applied: insert a piece, insert a
    /// character, delete a run, or repeat a run (positions wrap).
    fn mutate(text: &str, edits: &[(u8, usize, usize, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(op, at, n, c) in edits {
            let at = if chars.is_empty() {
                0
            } else {
                at % (chars.len() + 1)
            };
            match op % 4 {
                0 => {
                    let piece = PIECES[n % PIECES.len()];
                    chars.splice(at..at, piece.chars());
                }
                1 => chars.insert(at, c),
                2 => {
                    let end = (at + n % 8).min(chars.len());
                    chars.drain(at..end);
                }
                _ => {
                    let end = (at + n % 16).min(chars.len());
                    let run: Vec<char> = chars[at..end].to_vec();
                    chars.splice(at..at, run);
                }
            }
        }
        chars.into_iter().collect()
    }

    fn edits() -> impl Strategy<Value = Vec<(u8, usize, usize, char)>> {
        prop::collection::vec(
            (any::<u8>(), any::<usize>(), any::<usize>(), any::<char>()),
            0..6,
        )
    }

    fn check_arg(arg: &str) -> Result<(), TestCaseError> {
        if let Err(e) = args(&[arg]) {
            prop_assert!(
                e.location.starts_with("job `") && e.location.ends_with("` (argument 1)"),
                "{e}"
            );
            prop_assert!(e.snippet.is_none());
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.to_string().chars().count() < 1_000, "{e}");
        }
        Ok(())
    }

    fn check_file(text: &str) -> Result<(), TestCaseError> {
        let Err(e) = file(text) else {
            return Ok(());
        };
        prop_assert!(!e.message.is_empty());
        if e.location == "jobs.toml" {
            prop_assert!(e.message.starts_with("the file has no jobs"), "{e}");
            return Ok(());
        }
        let place = e.location.strip_prefix("jobs.toml:");
        let nums: Vec<usize> = place
            .into_iter()
            .flat_map(|p| p.split(':'))
            .filter_map(|n| n.parse().ok())
            .collect();
        prop_assert!(nums.len() == 2 && nums[0] >= 1 && nums[1] >= 1, "{e}");
        let lines = text.split('\n').count();
        prop_assert!(nums[0] <= lines, "line {} of {lines}: {e}", nums[0]);
        let snippet = e.snippet.as_ref().map(|s| s.0);
        prop_assert_eq!(snippet, Some(nums[0]));
        prop_assert!(e.to_string().chars().count() < 1_500, "{e}");
        Ok(())
    }

    proptest! {
        #[test]
        fn random_job_arguments(arg in any::<String>()) {
            check_arg(&arg)?;
        }

        #[test]
        fn mutated_job_arguments(i in 0..ARGS.len(), edits in edits()) {
            check_arg(&mutate(ARGS[i], &edits))?;
        }

        #[test]
        fn random_job_files(text in "[\\[\\]a-z_=\"'{}0-9.,:*#\n -]{0,200}") {
            check_file(&text)?;
        }

        #[test]
        fn random_bytes_as_job_files(text in any::<String>()) {
            check_file(&text)?;
        }

        #[test]
        fn mutated_job_files(i in 0..FILES.len(), edits in edits()) {
            check_file(&mutate(FILES[i], &edits))?;
        }
    }
}
