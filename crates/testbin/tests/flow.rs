//! Flow control held across worker processes on a PostgreSQL queue: per-key
//! concurrency limits (also while a worker holding slots is SIGKILLed), a
//! rate shared by every worker, unique keys under concurrent submitters,
//! and fairness between a large backlog and a later key.
//!
//! Overlaps and windows are computed from the record the queue keeps (each
//! attempt's start and duration, lost attempts included), not from what the
//! workers print.

mod common;
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use pg::*;
use postgres::Client;

/// One attempt of a job: its key (from the job's parameters), start and end
/// in microseconds, and outcome.
#[derive(Debug, Clone)]
struct Span {
    job: i64,
    key: String,
    start: i64,
    end: i64,
    outcome: String,
}

/// Every attempt recorded, with the `key` parameter of its job (`"-"` for a
/// job without one).
fn spans(q: &TestQueue, db: &mut Client) -> Vec<Span> {
    let s = &q.schema;
    let keys: BTreeMap<i64, String> = db
        .query(&format!("SELECT id, params::text FROM \"{s}\".jobs"), &[])
        .unwrap()
        .iter()
        .map(|r| {
            let p: serde_json::Value = serde_json::from_str(r.get::<_, &str>(1)).unwrap();
            let key = p
                .get("key")
                .and_then(|k| k.as_str())
                .unwrap_or("-")
                .to_string();
            (r.get(0), key)
        })
        .collect();
    db.query(
        &format!("SELECT job, started_at, duration_us, outcome FROM \"{s}\".attempts"),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| {
        let (job, start, dur): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        Span {
            job,
            key: keys[&job].clone(),
            start,
            end: start + dur,
            outcome: r.get(3),
        }
    })
    .collect()
}

/// The most attempts of one key that overlapped at any moment, per key.
fn peak_overlap(spans: &[Span]) -> BTreeMap<String, usize> {
    let mut by_key: BTreeMap<&str, Vec<(i64, i32)>> = BTreeMap::new();
    for s in spans {
        let e = by_key.entry(&s.key).or_default();
        e.push((s.start, 1));
        e.push((s.end, -1));
    }
    by_key
        .into_iter()
        .map(|(k, mut ev)| {
            // An end at the same moment as a start comes first: the slot was
            // free again.
            ev.sort();
            let (mut now, mut peak) = (0i32, 0i32);
            for (_, d) in ev {
                now += d;
                peak = peak.max(now);
            }
            (k.to_string(), peak as usize)
        })
        .collect()
}

/// A job file of `per_key` `nap` jobs for each of `keys` keys, each with
/// `concurrency_key = "tenant:K"` (and `concurrency` when given).
fn keyed_jobs(dir: &Path, keys: u32, per_key: u32, ms: u64, limit: Option<u32>) -> String {
    let mut f = String::from("[defaults]\nmax_attempts = 20\nbackoff = \"none\"\n\n");
    for _ in 0..per_key {
        for k in 0..keys {
            f.push_str(&format!(
                "[[job]]\ntask = \"nap\"\nparams = {{ ms = {ms}, key = \"k{k}\" }}\n\
                 concurrency_key = \"tenant:k{k}\"\n"
            ));
            if let Some(l) = limit {
                f.push_str(&format!("concurrency = {l}\n"));
            }
        }
    }
    let path = dir.join("keyed.toml");
    std::fs::write(&path, f).unwrap();
    path.to_str().unwrap().to_string()
}

fn submitted(q: &TestQueue, file: &str) {
    let out = q.cli(&["submit", "-q", "-f", file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn wait_all_succeeded(q: &TestQueue, db: &mut Client, n: i64, limit: Duration) {
    wait_until(limit, "every job to succeed", || {
        let st = q.states(db);
        assert_eq!(st.get("dead"), None, "no job dies: {st:?}");
        st.get("succeeded").copied() == Some(n)
    });
}

#[test]
fn three_workers_never_run_more_than_two_attempts_of_a_key() {
    let q = TestQueue::new("key_limit");
    let d = dir();
    // 2,000 jobs over 20 keys; 3 workers of 16 slots each would run 48 at
    // once, more than the 40 that 20 keys × 2 allow: without the limit some
    // key would run 3 or more.
    submitted(&q, &keyed_jobs(d.path(), 20, 100, 20, Some(2)));
    let workers = q.workers(d.path(), 3, &["-j", "16", "--lease", "5s"]);
    let mut db = q.db();
    wait_all_succeeded(&q, &mut db, 2000, Duration::from_secs(300));
    stop_all(workers);
    assert_each_success_recorded_once(&q, &mut db);
    let spans = spans(&q, &mut db);
    let peaks = peak_overlap(&spans);
    assert_eq!(peaks.len(), 20, "every key ran: {peaks:?}");
    for (k, p) in &peaks {
        assert!(*p <= 2, "key {k} had {p} attempts at once");
    }
    // The limit was the bound, not a lack of work: most keys reached it.
    assert!(
        peaks.values().filter(|p| **p == 2).count() >= 10,
        "keys ran two at once: {peaks:?}"
    );
}

#[test]
fn a_rate_holds_across_three_workers() {
    let q = TestQueue::new("rate");
    let d = dir();
    let mut f = String::new();
    for i in 0..500 {
        f.push_str(&format!(
            "[[job]]\ntask = \"nap\"\nparams = {{ ms = 1, key = \"api\" }}\n\
             rate_key = \"api\"\n# {i}\n"
        ));
    }
    let file = d.path().join("rated.toml");
    std::fs::write(&file, f).unwrap();
    // The rate is stored in the queue, as an operator sets it.
    let out = q.cli(&["limit", "--key", "api", "--rate", "50/s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    submitted(&q, file.to_str().unwrap());
    let workers = q.workers(d.path(), 3, &["-j", "8", "--lease", "5s"]);
    let mut db = q.db();
    wait_all_succeeded(&q, &mut db, 500, Duration::from_secs(120));
    stop_all(workers);
    let mut starts: Vec<i64> = spans(&q, &mut db).iter().map(|s| s.start).collect();
    starts.sort();
    assert_eq!(starts.len(), 500, "one attempt each");
    // No window of one second holds more than 50 starts: the 51st start
    // after any start is a second or more later.
    for w in starts.windows(51) {
        assert!(
            w[50] - w[0] >= 1_000_000,
            "51 starts within {} µs",
            w[50] - w[0]
        );
    }
    // And the rate was used: the whole took at most a little over 10 s of
    // starts, not one worker's serial pace.
    let pace = (starts[499] - starts[0]) as f64 / 1e6;
    assert!(
        pace >= 9.0,
        "500 starts at 50/s take 9 s or more, took {pace}"
    );
}

#[test]
fn slots_held_by_a_killed_worker_come_back_after_its_lease() {
    let q = TestQueue::new("killed_slots");
    let d = dir();
    // One key, limit 2, long jobs: the first worker takes both slots.
    let mut f = String::new();
    for _ in 0..6 {
        f.push_str(
            "[[job]]\ntask = \"nap\"\nparams = { ms = 1500, key = \"k\" }\n\
             concurrency_key = \"tenant:k\"\nconcurrency = 2\nmax_attempts = 5\n",
        );
    }
    let file = d.path().join("slow.toml");
    std::fs::write(&file, f).unwrap();
    submitted(&q, file.to_str().unwrap());
    let log = d.path().join("a.log");
    let a = q.worker("a", &["-j", "4", "--lease", "2s"], &log);
    let mut db = q.db();
    // Started, not only claimed: a claim killed before its start is seen
    // is undone, not recorded lost.
    let started = format!(
        "SELECT COUNT(*) FROM \"{}\".jobs WHERE worker = 'a' AND started",
        q.schema
    );
    wait_until(
        Duration::from_secs(30),
        "worker a to start two jobs",
        || db.query_one(&started, &[]).unwrap().get::<_, i64>(0) == 2,
    );
    signal(&a, libc::SIGKILL);
    let mut a = a;
    a.wait().unwrap();
    // A second worker cannot take the key while a's slots are held; once
    // a's lease has passed they are rescued, and the key goes on.
    let workers = q.workers(d.path(), 1, &["-j", "4", "--lease", "2s"]);
    wait_all_succeeded(&q, &mut db, 6, Duration::from_secs(120));
    stop_all(workers);
    let spans = spans(&q, &mut db);
    assert!(
        spans.iter().filter(|s| s.outcome == "crashed").count() >= 2,
        "the killed worker's attempts are recorded lost: {spans:?}"
    );
    let peaks = peak_overlap(&spans);
    assert!(
        peaks["k"] <= 2,
        "at most two at once, lost ones included: {peaks:?}"
    );
}

#[test]
fn eight_concurrent_submitters_of_one_unique_key_make_one_job() {
    let q = TestQueue::new("unique");
    let d = dir();
    let file = d.path().join("one.toml");
    std::fs::write(
        &file,
        "[[job]]\ntask = \"nap\"\nparams = { ms = 1 }\nunique_key = \"nightly-report\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap().to_string();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| q.cli(&["submit", "-f", &f])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids = Vec::new();
    for o in &outs {
        assert!(o.status.success(), "{}", text(&o.stderr));
        ids.push(text(&o.stdout).trim().to_string());
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every submitter got the one job's id: {ids:?}"
    );
    let existing = outs
        .iter()
        .filter(|o| text(&o.stderr).contains("exists"))
        .count();
    assert_eq!(existing, 7, "seven submits said the job existed");
    let mut db = q.db();
    assert_eq!(
        q.states(&mut db).values().sum::<i64>(),
        1,
        "one job in the queue"
    );
}

#[test]
fn a_later_key_is_not_held_back_by_a_large_backlog() {
    let q = TestQueue::new("fair");
    let d = dir();
    // 10,000 jobs of key A, then 10 of key B.
    let mut a = String::from("[[job]]\ntask = \"nap\"\ncount = 10000\n");
    a.push_str("params = { ms = 0, key = \"A\" }\nconcurrency_key = \"tenant:A\"\n");
    let fa = d.path().join("a.toml");
    std::fs::write(&fa, a).unwrap();
    let mut b = String::from("[[job]]\ntask = \"nap\"\ncount = 10\n");
    b.push_str("params = { ms = 0, key = \"B\" }\nconcurrency_key = \"tenant:B\"\n");
    let fb = d.path().join("b.toml");
    std::fs::write(&fb, b).unwrap();
    submitted(&q, fa.to_str().unwrap());
    submitted(&q, fb.to_str().unwrap());
    let workers = q.workers(d.path(), 2, &["-j", "4", "--lease", "5s"]);
    let mut db = q.db();
    wait_all_succeeded(&q, &mut db, 10_010, Duration::from_secs(300));
    stop_all(workers);
    let mut spans = spans(&q, &mut db);
    spans.sort_by_key(|s| (s.start, s.job));
    let last_b = spans.iter().rposition(|s| s.key == "B").unwrap();
    let a_before = spans[..last_b].iter().filter(|s| s.key == "A").count();
    assert!(
        a_before < 100,
        "B's 10 jobs all started before 1% of A's backlog: {a_before} of A's started first"
    );
}
