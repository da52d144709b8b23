//! The exit codes of DESIGN.md, each from a real run: 0 every job
//! succeeded, 1 a job ended dead or cancelled, 2 bad input (nothing ran),
//! 3 the runner itself failed (a queue it could not reach, an output it
//! could not write). 130, interrupted, is in `signals`.

use crate::util::{run, run_small};

#[test]
fn every_job_succeeded_is_0_and_a_dead_job_is_1() {
    run(&["run", "noop*2"]).code(0);
    run(&["run", "noop", "fail", "--max-attempts", "1"]).code(1);
}

#[test]
fn bad_input_is_2() {
    run(&["run", "badtask"]).code(2);
    run_small(&["run", "noop*4294967295"]).code(2);
    run(&["run", "noop", "--bogus-flag"]).code(2);
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_queue_that_cannot_be_reached_is_3() {
    let url = format!(
        "postgres://runyard@127.0.0.1:{}/jobs?reconnect=1s",
        closed_port()
    );
    let r = run(&["status", "--queue", &url]);
    r.code(3);
    assert!(r.stderr.starts_with("error: PostgreSQL: "), "{}", r.stderr);
}

#[test]
fn an_output_that_cannot_be_written_is_3() {
    let r = run(&["run", "noop", "--json", "/dev/full", "-q"]);
    r.code(3);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn an_error_chain_says_each_cause_once() {
    // The driver's error shows in the queue's message and is its source too.
    let r = run(&["status", "--queue", "postgres://runyard@127.0.0.1:1/jobs"]);
    assert_eq!(
        r.stderr
            .to_lowercase()
            .matches("connection refused")
            .count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn a_queue_url_without_a_host_is_refused_naming_it() {
    let r = run(&["status", "--queue", "postgres://runyard@/jobs"]);
    r.code(2);
    assert!(r.stderr.contains("names no host"), "{}", r.stderr);
}

#[test]
fn the_help_lists_the_exit_codes() {
    let help = run(&["--help"]).stdout;
    for line in [
        "0    every job succeeded",
        "1    at least one job ended dead or cancelled",
        "2    usage or input error (nothing ran)",
        "3    the runner itself failed",
        "130  interrupted",
    ] {
        assert!(help.contains(line), "{line}\n{help}");
    }
}
