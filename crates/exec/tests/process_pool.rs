//! The process pool as an `Executor`, with real worker processes: this test
//! binary is its own worker (it enters the worker role first thing in
//! `main`, as a user's binary does), so its tasks run in processes the pool
//! starts, and the tests drive `submit`, `cancel`, `take_unstarted` and
//! `cancel_running` directly.
//!
//! Run with `harness = false`: `cargo test -p runyard-exec --test process_pool [FILTER]`.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runyard_core::{
    Context, JobId, JobParams, Outcome, Registry, Task, TaskDef, TaskError, TaskIndex, Timestamp,
};
use runyard_exec::process::{enter_if_child_with, ProcessConfig, ProcessPool};
use runyard_exec::{Attempt, AttemptReport, Executor, Sink};
use serde_json::{json, Value};

struct Noop;
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Params = ();
    type Output = ();
    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Sleeps forever, deaf to cancellation.
struct Hang;
impl Task for Hang {
    const NAME: &'static str = "hang";
    const KIND: runyard_core::TaskKind = runyard_core::TaskKind::Blocking;
    type Params = ();
    type Output = ();
    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Sleeps `us` microseconds.
struct Nap;
impl Task for Nap {
    const NAME: &'static str = "nap";
    type Params = Value;
    type Output = u64;
    fn run(&self, p: Value, ctx: &Context) -> Result<u64, TaskError> {
        std::thread::sleep(Duration::from_micros(p["us"].as_u64().unwrap_or(0)));
        Ok(ctx.job_id().0)
    }
}

fn registry() -> Registry {
    Registry::builder()
        .task(TaskDef::from_task(Noop))
        .task(TaskDef::from_task(Hang))
        .task(TaskDef::from_task(Nap))
        .build()
        .expect("a valid registry")
}

#[derive(Debug)]
enum Heard {
    Started(u64, Timestamp),
    AttemptReport(AttemptReport),
}

/// A sink that wants starts and passes everything to the test.
struct Chan(Mutex<Sender<Heard>>);

impl Sink for Chan {
    fn finished(&self, batch: Vec<AttemptReport>) {
        let tx = self.0.lock().unwrap();
        for f in batch {
            let _ = tx.send(Heard::AttemptReport(f));
        }
    }
    fn started(&self, token: u64, at: Timestamp) {
        let _ = self.0.lock().unwrap().send(Heard::Started(token, at));
    }
    fn wants_started(&self) -> bool {
        true
    }
}

struct Fixture {
    pool: ProcessPool,
    rx: Receiver<Heard>,
    reg: Arc<Registry>,
    /// Everything heard, in order.
    heard: Vec<Heard>,
}

const PATIENCE: Duration = Duration::from_secs(60);

impl Fixture {
    fn new(workers: usize) -> Fixture {
        let (tx, rx) = channel();
        let reg = Arc::new(registry());
        let mut cfg = ProcessConfig::current_exe().unwrap();
        cfg.workers = workers;
        cfg.kill_grace = Duration::from_millis(200);
        let pool = ProcessPool::new(cfg, Arc::clone(&reg), Arc::new(Chan(Mutex::new(tx)))).unwrap();
        Fixture {
            pool,
            rx,
            reg,
            heard: Vec::new(),
        }
    }

    fn attempt(&self, token: u64, task: &str, params: Value) -> Attempt {
        Attempt {
            token,
            job: JobId(token),
            number: 1,
            task: self.task(task),
            params: JobParams::from_value(params).unwrap(),
            timeout: None,
            parents: None,
        }
    }

    fn task(&self, name: &str) -> TaskIndex {
        self.reg.lookup(name).unwrap()
    }

    /// Listens until `done` holds for what was heard.
    fn until(&mut self, what: &str, mut done: impl FnMut(&[Heard]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.heard) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(h) => self.heard.push(h),
                Err(_) => panic!("gave up waiting for {what}; heard {:?}", self.heard),
            }
        }
    }

    fn started(&mut self, token: u64) {
        self.until(&format!("attempt {token} to start"), |h| {
            h.iter()
                .any(|x| matches!(x, Heard::Started(t, _) if *t == token))
        });
    }

    /// Waits for the ends of `tokens` and returns them.
    fn ends(&mut self, tokens: &[u64]) -> HashMap<u64, String> {
        self.until(&format!("the ends of {tokens:?}"), |h| {
            let ended: HashSet<u64> = h
                .iter()
                .filter_map(|x| match x {
                    Heard::AttemptReport(f) => Some(f.token),
                    _ => None,
                })
                .collect();
            tokens.iter().all(|t| ended.contains(t))
        });
        self.outcomes()
    }

    /// The outcome of every attempt reported so far; each reported once.
    fn outcomes(&self) -> HashMap<u64, String> {
        let mut out = HashMap::new();
        for h in &self.heard {
            if let Heard::AttemptReport(f) = h {
                let o = outcome(&f.outcome);
                assert!(
                    out.insert(f.token, o).is_none(),
                    "attempt {} reported twice",
                    f.token
                );
            }
        }
        out
    }

    /// Drops the pool and waits until its workers are gone.
    fn finish(self) {
        drop(self.pool);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = live_children();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "workers left behind: {left:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn outcome(e: &Outcome) -> String {
    e.kind().to_string()
}

/// Children of this process that have not exited.
fn live_children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        if after[1] == me.to_string() && after[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

fn each_attempt_is_started_then_finished_exactly_once() {
    let mut f = Fixture::new(2);
    let batch: Vec<Attempt> = (1..=500)
        .map(|t| f.attempt(t, "nap", json!({"us": t % 3})))
        .collect();
    f.pool.submit(batch);
    let tokens: Vec<u64> = (1..=500).collect();
    let ends = f.ends(&tokens);
    assert!(ends.values().all(|o| o == "succeeded"), "{ends:?}");
    for t in tokens {
        let started = f
            .heard
            .iter()
            .position(|h| matches!(h, Heard::Started(x, _) if *x == t));
        let finished = f
            .heard
            .iter()
            .position(|h| matches!(h, Heard::AttemptReport(x) if x.token == t));
        let (s, e) = (started.expect("a start"), finished.expect("an end"));
        assert!(s < e, "attempt {t}: its start is heard before its end");
        let starts = f
            .heard
            .iter()
            .filter(|h| matches!(h, Heard::Started(x, _) if *x == t))
            .count();
        assert_eq!(starts, 1, "attempt {t} started once");
    }
    f.finish();
}

fn cancelling_a_running_attempt_kills_its_worker_and_the_batch_runs_elsewhere() {
    let mut f = Fixture::new(1);
    // One submit, one worker: one batch of three.
    let batch = vec![
        f.attempt(1, "hang", json!({})),
        f.attempt(2, "noop", json!({})),
        f.attempt(3, "noop", json!({})),
    ];
    f.pool.submit(batch);
    f.started(1);
    let unstarted = f.pool.cancel(2).expect("2 had not started: given back");
    assert_eq!(unstarted.token, 2);
    assert!(f.pool.cancel(1).is_none(), "1 is running: reported later");
    let ends = f.ends(&[1, 3]);
    assert_eq!(ends[&1], "cancelled");
    assert_eq!(ends[&3], "succeeded", "the rest of the batch ran elsewhere");
    assert!(
        !ends.contains_key(&2),
        "a cancelled unstarted attempt is not reported"
    );
    f.finish();
}

fn take_unstarted_gives_back_the_rest_of_a_batch_in_flight() {
    let mut f = Fixture::new(1);
    let mut batch = vec![f.attempt(1, "hang", json!({}))];
    batch.extend((2..=6).map(|t| f.attempt(t, "noop", json!({}))));
    f.pool.submit(batch);
    f.started(1);
    let mut back: Vec<u64> = f.pool.take_unstarted().iter().map(|a| a.token).collect();
    back.sort_unstable();
    assert_eq!(back, [2, 3, 4, 5, 6]);
    assert!(f.pool.cancel(1).is_none());
    let ends = f.ends(&[1]);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[&1], "cancelled");
    f.finish();
}

fn cancel_running_stops_every_worker_and_gives_back_the_rest() {
    let mut f = Fixture::new(2);
    let a = f.attempt(1, "hang", json!({}));
    f.pool.submit(vec![a]);
    f.started(1);
    let b = f.attempt(2, "hang", json!({}));
    f.pool.submit(vec![b]);
    f.started(2);
    let waiting: Vec<Attempt> = (3..=10).map(|t| f.attempt(t, "noop", json!({}))).collect();
    f.pool.submit(waiting);
    let mut back: Vec<u64> = f.pool.cancel_running().iter().map(|a| a.token).collect();
    back.sort_unstable();
    assert_eq!(back, (3..=10).collect::<Vec<_>>());
    let ends = f.ends(&[1, 2]);
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.values().all(|o| o == "cancelled"), "{ends:?}");
    // Each cancelled attempt's worker was killed and reaped before the
    // report; no new worker starts without work.
    assert!(live_children().is_empty(), "{:?}", live_children());
    f.finish();
}

fn a_timeout_inside_a_batch_is_charged_to_its_attempt() {
    let mut f = Fixture::new(1);
    let mut hang = f.attempt(2, "hang", json!({}));
    hang.timeout = Some(Duration::from_millis(100));
    let batch = vec![
        f.attempt(1, "noop", json!({})),
        hang,
        f.attempt(3, "noop", json!({})),
    ];
    f.pool.submit(batch);
    let ends = f.ends(&[1, 2, 3]);
    assert_eq!(ends[&1], "succeeded");
    assert_eq!(ends[&2], "timed_out");
    assert_eq!(ends[&3], "succeeded");
    f.finish();
}

/// Cancels race with ends: each attempt naps `NAP`, and two in three are
/// cancelled around the moment they end (from a little before to a little
/// after). Each attempt is then either given back by `cancel` or reported
/// exactly once, and only attempts that were asked to stop are reported
/// cancelled (a cancel that arrives as its attempt ends must not stop the
/// worker's next attempt).
fn cancels_racing_with_ends_never_hit_the_wrong_attempt() {
    const NAP: Duration = Duration::from_millis(12);
    let f = Fixture::new(2);
    let n = 400u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let attempts: Vec<Attempt> = (1..=n)
        .map(|t| f.attempt(t, "nap", json!({"us": NAP.as_micros() as u64})))
        .collect();
    f.pool.submit(attempts);
    // (when, token), soonest last.
    let mut due: Vec<(Timestamp, u64)> = Vec::new();
    let mut asked = HashSet::new();
    let mut given_back = HashSet::new();
    let mut reported = HashMap::new();
    let deadline = Instant::now() + PATIENCE;
    while (reported.len() + given_back.len()) < n as usize {
        assert!(Instant::now() < deadline, "every attempt accounted for");
        while let Some(&(when, t)) = due.last() {
            if Timestamp::now() < when {
                break;
            }
            due.pop();
            asked.insert(t);
            if f.pool.cancel(t).is_some() {
                given_back.insert(t);
            }
        }
        let wait = due.last().map_or(Duration::from_millis(50), |(when, _)| {
            when.since(Timestamp::now()).min(Duration::from_millis(50))
        });
        match f.rx.recv_timeout(wait) {
            Ok(Heard::Started(t, at)) => {
                if next() % 3 != 0 {
                    // From 150 µs before its end to 150 µs after.
                    let when =
                        at + NAP - Duration::from_micros(150) + Duration::from_micros(next() % 300);
                    due.push((when, t));
                    due.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
                }
            }
            Ok(Heard::AttemptReport(x)) => {
                let o = outcome(&x.outcome);
                assert!(
                    reported.insert(x.token, o).is_none(),
                    "attempt {} reported twice",
                    x.token
                );
            }
            Err(_) => {}
        }
    }
    assert!(
        given_back.iter().all(|t| !reported.contains_key(t)),
        "an attempt given back was reported too"
    );
    for (t, o) in &reported {
        match o.as_str() {
            "succeeded" => {}
            "cancelled" => assert!(asked.contains(t), "attempt {t} cancelled unasked"),
            other => panic!("attempt {t} ended {other}"),
        }
    }
    let cancelled = reported.values().filter(|o| *o == "cancelled").count();
    println!(
        "    {} cancels asked: {cancelled} cancelled, {} given back, the rest ended first",
        asked.len(),
        given_back.len()
    );
    assert!(cancelled > 0, "some cancels reached running attempts");
    f.finish();
}

fn main() {
    enter_if_child_with(registry);
    let tests: [(&str, fn()); 6] = [
        (
            "each_attempt_is_started_then_finished_exactly_once",
            each_attempt_is_started_then_finished_exactly_once,
        ),
        (
            "cancelling_a_running_attempt_kills_its_worker_and_the_batch_runs_elsewhere",
            cancelling_a_running_attempt_kills_its_worker_and_the_batch_runs_elsewhere,
        ),
        (
            "take_unstarted_gives_back_the_rest_of_a_batch_in_flight",
            take_unstarted_gives_back_the_rest_of_a_batch_in_flight,
        ),
        (
            "cancel_running_stops_every_worker_and_gives_back_the_rest",
            cancel_running_stops_every_worker_and_gives_back_the_rest,
        ),
        (
            "a_timeout_inside_a_batch_is_charged_to_its_attempt",
            a_timeout_inside_a_batch_is_charged_to_its_attempt,
        ),
        (
            "cancels_racing_with_ends_never_hit_the_wrong_attempt",
            cancels_racing_with_ends_never_hit_the_wrong_attempt,
        ),
    ];
    // Like libtest: free arguments filter by name; flags are ignored.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("\n{ran} process pool tests passed");
}
