//! Workflows under crashes: a random DAG of 2,000 jobs run with a state
//! file and killed (SIGKILL) three times mid-run, then resumed; and the
//! same kind of DAG on PostgreSQL drained by three workers, one of them
//! killed. Each checks, from the executions the tasks wrote down, that no
//! job started before every job it is after had ended, and, from the
//! record, that every job succeeded and was recorded as succeeded once.

mod common;
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pg::*;

/// A job file of `n` `step` jobs named `j0`.. in an order where parents
/// come first; job i is after up to three random jobs among the 40 before
/// it. Returns the file and each job's parents (by index).
fn dag_file(
    dir: &Path,
    side: &Path,
    n: usize,
    work_us: u64,
) -> (std::path::PathBuf, Vec<Vec<usize>>) {
    let mut rng = Rng::new();
    let mut toml = String::from("[defaults]\nmax_attempts = 20\nbackoff = \"none\"\n\n");
    let mut parents = Vec::with_capacity(n);
    for i in 0..n {
        let mut after: Vec<usize> = Vec::new();
        if i > 0 {
            for _ in 0..rng.below(4) {
                let p = i - 1 - rng.below(i.min(40) as u64) as usize;
                if !after.contains(&p) {
                    after.push(p);
                }
            }
        }
        let names: Vec<String> = after.iter().map(|p| format!("\"j{p}\"")).collect();
        toml.push_str(&format!(
            "[[job]]\nname = \"j{i}\"\ntask = \"step\"\nafter = [{}]\nparams = {{ file = {:?}, work_us = {work_us} }}\n\n",
            names.join(", "),
            side.display().to_string()
        ));
        parents.push(after);
    }
    let file = dir.join("dag.toml");
    std::fs::write(&file, toml).unwrap();
    (file, parents)
}

/// Starts and ends of executions, by job id: the position in the side
/// file of each job's first start and of its last end.
struct Executions {
    first_start: BTreeMap<u64, usize>,
    last_end: BTreeMap<u64, usize>,
    starts: usize,
}

fn executions_of(side: &Path) -> Executions {
    let mut e = Executions {
        first_start: BTreeMap::new(),
        last_end: BTreeMap::new(),
        starts: 0,
    };
    let text = std::fs::read_to_string(side).unwrap_or_default();
    for (pos, line) in text.lines().enumerate() {
        let mut w = line.split(' ');
        let (kind, job) = (w.next().unwrap(), w.next().unwrap().parse().unwrap());
        match kind {
            "S" => {
                e.starts += 1;
                e.first_start.entry(job).or_insert(pos);
            }
            _ => {
                e.last_end.insert(job, pos);
            }
        }
    }
    e
}

/// Every job ran, and each job's first start comes after the last end of
/// every job it is after (a parent runs no more once its success is
/// recorded, and its dependents are released only then).
fn check_order(side: &Path, ids: &[u64], parents: &[Vec<usize>]) {
    let e = executions_of(side);
    assert_eq!(e.first_start.len(), ids.len(), "every job ran");
    for (i, ps) in parents.iter().enumerate() {
        let start = e.first_start[&ids[i]];
        for &p in ps {
            let end = *e
                .last_end
                .get(&ids[p])
                .unwrap_or_else(|| panic!("job {} never ended", ids[p]));
            assert!(
                end < start,
                "job {} (j{i}) started at line {start}, before job {} (j{p}), which it is after, \
                 ended at line {end}",
                ids[i],
                ids[p]
            );
        }
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |s| s.lines().count())
}

#[test]
fn a_workflow_killed_three_times_resumes_in_order_and_records_each_job_once() {
    const JOBS: usize = 2000;
    let d = dir();
    let state = d.path().join("run.db");
    let side = d.path().join("executions");
    let (file, parents) = dag_file(d.path(), &side, JOBS, 400);
    let mut rng = Rng::new();
    let (mut kills, mut mid_run_kills) = (0, 0);
    while mid_run_kills < 3 && kills < 30 {
        // Each kill comes after some jobs ran, so after the first run the
        // state holds the workflow: the others resume it.
        let mut c = runyard();
        c.args(["run", "-q", "-j", "2", "--state"]).arg(&state);
        if kills > 0 {
            c.arg("--resume");
        } else {
            c.arg("-f").arg(&file);
        }
        let before = lines(&side);
        let mut child: Child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Some progress, at most a sixth of the work per kill, then a kill.
        let want = before + 2 + rng.below((JOBS / 3) as u64) as usize;
        let start = Instant::now();
        while lines(&side) < want && start.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "run {kills} ended with {st}");
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if lines(&side) > before {
            mid_run_kills += 1;
        }
    }
    assert!(
        mid_run_kills >= 3,
        "only {mid_run_kills} of {kills} kills came mid-run"
    );

    let out = finish({
        let mut c = runyard();
        c.args(["run", "-q", "-j", "2", "--json", "-", "--resume", "--state"])
            .arg(&state);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), JOBS, "every job in the report, once");
    // Ids by name, and the edges as the queue holds them.
    let mut ids = vec![0u64; JOBS];
    for j in jobs {
        let name = j["name"].as_str().expect("a name");
        let i: usize = name[1..].parse().unwrap();
        ids[i] = j["id"].as_u64().unwrap();
        assert_eq!(j["state"], "succeeded", "{name}");
        let attempts = j["attempts"].as_array().unwrap();
        let ok = attempts
            .iter()
            .filter(|a| a["outcome"] == "succeeded")
            .count();
        assert_eq!(ok, 1, "{name} recorded as succeeded once");
        assert!(
            attempts[..attempts.len() - 1]
                .iter()
                .all(|a| a["outcome"] == "crashed"),
            "{name}: only kills cost attempts"
        );
    }
    for j in jobs {
        let i: usize = j["name"].as_str().unwrap()[1..].parse().unwrap();
        let after: Vec<u64> = j["after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let want: Vec<u64> = parents[i].iter().map(|&p| ids[p]).collect();
        assert_eq!(after, want, "j{i} is after what its file said");
    }
    check_order(&side, &ids, &parents);
    eprintln!("{kills} kills ({mid_run_kills} mid-run)");
}

#[test]
fn a_workflow_on_postgres_loses_nothing_when_one_of_three_workers_is_killed() {
    const JOBS: usize = 2000;
    let q = TestQueue::new("dag_kill");
    let d = dir();
    let side = d.path().join("executions");
    let (file, parents) = dag_file(d.path(), &side, JOBS, 300);
    let out = q.cli(&["submit", "--json", "-", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut ids = vec![0u64; JOBS];
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let i: usize = v["name"].as_str().unwrap()[1..].parse().unwrap();
        ids[i] = v["id"].as_u64().unwrap();
    }
    assert!(ids.iter().all(|&id| id > 0), "an id for every job");
    let mut db = q.db();
    assert_eq!(
        q.count(&mut db, "waiting") + q.count(&mut db, "blocked"),
        JOBS as i64
    );

    let mut workers = q.workers(d.path(), 3, &["--lease", "2s", "-j", "2"]);
    let target = (JOBS / 3) as i64;
    wait_until(
        Duration::from_secs(120),
        "a third of the jobs to succeed",
        || q.count(&mut db, "succeeded") >= target,
    );
    let (mut victim, _) = workers.remove(1);
    signal(&victim, libc::SIGKILL);
    victim.wait().unwrap();
    wait_until(Duration::from_secs(240), "every job to succeed", || {
        q.count(&mut db, "succeeded") == JOBS as i64
    });
    stop_all(workers);
    assert_eq!(
        q.states(&mut db),
        BTreeMap::from([("succeeded".into(), JOBS as i64)])
    );
    assert_each_success_recorded_once(&q, &mut db);
    check_order(&side, &ids, &parents);
}
