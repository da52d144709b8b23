//! Worker processes that do not speak the protocol: each is a clear
//! error on the attempts it was given, never a hang.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runyard_core::{Context, JobId, JobParams, Outcome, Registry, Task, TaskDef, TaskError};
use runyard_exec::process::{ProcessConfig, ProcessPool};
use runyard_exec::{Attempt, AttemptReport, Executor, Sink};

struct Chan(Mutex<Sender<AttemptReport>>);

impl Sink for Chan {
    fn finished(&self, batch: Vec<AttemptReport>) {
        for f in batch {
            let _ = self.0.lock().unwrap().send(f);
        }
    }
}

struct Noop;
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Params = ();
    type Output = ();
    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// A pool whose "worker" is a shell script, and one attempt sent to it.
fn try_worker(script: &str) -> (ProcessPool, Receiver<AttemptReport>) {
    let (tx, rx) = channel();
    let reg = Arc::new(
        Registry::builder()
            .task(TaskDef::from_task(Noop))
            .build()
            .unwrap(),
    );
    let mut cfg = ProcessConfig::new("/bin/sh", ["-c", script]);
    cfg.workers = 1;
    cfg.startup_timeout = Duration::from_millis(300);
    let pool = ProcessPool::new(cfg, Arc::clone(&reg), Arc::new(Chan(Mutex::new(tx)))).unwrap();
    pool.submit(vec![Attempt {
        token: 1,
        job: JobId(1),
        number: 1,
        task: reg.lookup("noop").unwrap(),
        params: JobParams::empty(),
        timeout: None,
        parents: None,
    }]);
    (pool, rx)
}

fn crash_message(script: &str) -> String {
    let (_pool, rx) = try_worker(script);
    let f = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the attempt is reported, not left hanging");
    match f.outcome {
        Outcome::Crashed { message, .. } => message,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_worker_speaking_another_protocol_version_is_refused() {
    // A greeting frame for version 99: length 9, kind 1, version, pid.
    let m = crash_message(
        r"printf '\011\000\000\000\001\143\000\000\000\052\000\000\000' >&4; sleep 30",
    );
    assert!(
        m.contains("the worker speaks protocol 99, the engine 4"),
        "{m}"
    );
}

#[test]
fn a_worker_sending_garbage_is_an_error_not_a_hang() {
    let m = crash_message("printf 'garbage, not frames' >&4; sleep 30");
    assert!(
        m.contains("protocol error: a frame of impossible length"),
        "{m}"
    );
}

#[test]
fn a_program_that_is_not_a_worker_is_named() {
    let m = crash_message("exit 0");
    assert!(m.contains("before greeting the engine"), "{m}");
    assert!(m.contains("is `/bin/sh` a runyard binary"), "{m}");
}

#[test]
fn a_worker_that_never_greets_times_out() {
    let m = crash_message("sleep 30");
    assert!(m.contains("no greeting from the worker: timed out"), "{m}");
}
