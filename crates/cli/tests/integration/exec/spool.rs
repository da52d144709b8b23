//! Where the commands' output waits: files unlinked as they are made (so a
//! SIGKILL leaves nothing behind), read back a buffer at a time (so memory
//! stays bounded), and a bounded number of them open however many jobs wait
//! with `--keep-order`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{runyard, wait_exit, wait_until, Dir};

fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// What the test started, ended when dropped (a failed assertion
/// included): `exec`, and the command's process group, whose id the
/// command wrote to a file.
struct Started {
    exec: Child,
    group_file: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.exec.kill();
        let _ = self.exec.wait();
        if let Ok(pid) = std::fs::read_to_string(&self.group_file) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}

#[test]
fn a_sigkilled_exec_leaves_nothing_in_the_temporary_directory() {
    let d = Dir::new();
    let tmp = d.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let pid_file = d.path("pid");
    let script = format!(
        "echo out; echo err >&2; echo $$ > {}.new; mv {0}.new {0}; exec sleep 600",
        pid_file.display()
    );
    let exec = runyard()
        .env("TMPDIR", &tmp)
        .args(["exec", "sh", "-c", &script, ":::", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut started = Started {
        exec,
        group_file: pid_file.clone(),
    };
    wait_until(Duration::from_secs(30), "the command started", || {
        pid_file.exists()
    });
    let while_running = entries(&tmp);
    started.exec.kill().unwrap();
    wait_exit(&mut started.exec, Duration::from_secs(30));
    let after_sigkill = entries(&tmp);
    drop(started);
    assert_eq!(while_running, Vec::<String>::new(), "while it runs");
    assert_eq!(after_sigkill, Vec::<String>::new(), "after SIGKILL");
}

/// Peak resident memory of a live process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

#[test]
fn a_large_output_reaches_stdout_in_bounded_memory() {
    const SIZE: u64 = 50_000_000;
    let d = Dir::new();
    let go = d.path("go");
    // Job 1 prints 50 MB; job 2 keeps the run alive until the test has
    // measured it.
    let script = format!(
        "if [ $1 = 1 ]; then head -c {SIZE} /dev/zero; else while [ ! -e {} ]; do sleep 0.01; done; fi",
        go.display()
    );
    let mut child = runyard()
        .args([
            "exec", "-j", "2", "sh", "-c", &script, "sh", "{}", ":::", "1", "2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = Arc::new(AtomicU64::new(0));
    let reader = {
        let (mut out, read) = (child.stdout.take().unwrap(), Arc::clone(&read));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                read.fetch_add(n as u64, Ordering::SeqCst);
            }
        })
    };
    wait_until(Duration::from_secs(120), "job 1's output was read", || {
        read.load(Ordering::SeqCst) >= SIZE
    });
    let peak = peak_rss(child.id());
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), 0);
    reader.join().unwrap();
    assert_eq!(read.load(Ordering::SeqCst), SIZE);
    assert!(
        peak < 40 << 20,
        "exec peaked at {} MB for a job's {} MB of output",
        peak >> 20,
        SIZE / 1_000_000
    );
}

/// Jobs that open files may be held for, against a limit of 100 open files:
/// with two spool files each, 120 ended jobs cannot all keep their own.
const JOBS: usize = 120;

/// `runyard exec` under a limit of 100 open files, writing its events to
/// `events` and reading its inputs (1 to [`JOBS`]) from a file.
fn exec_with_few_files(d: &Dir, events: &std::path::Path, args: &[&str]) -> Command {
    let input: String = (1..=JOBS).map(|i| format!("{i}\n")).collect();
    let inputs = d.write("inputs", &input);
    let mut c = Command::new("prlimit");
    c.arg("--nofile=100")
        .arg(env!("CARGO_BIN_EXE_runyard"))
        .args(["exec", "-j", "4", "--events"])
        .arg(events)
        .arg("-a")
        .arg(&inputs)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

/// A shell test that holds once the run's events show `n` jobs ended
/// (succeeded or dead, so it cannot wait forever).
fn ended_at_least(events: &std::path::Path, n: usize) -> String {
    format!(
        "[ \"$(grep -c '\"type\":\"\\(succeeded\\|dead\\)\"' {} 2>/dev/null)\" -ge {n} ] 2>/dev/null",
        events.display()
    )
}

/// Asserts every job succeeded and printed `out-N` and `err-N`.
fn all_printed(code: Option<i32>, stdout: &str, stderr: &str) {
    let messages: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("err-")).collect();
    assert_eq!(code, Some(0), "{}", messages.join("\n"));
    for i in 1..=JOBS {
        assert!(stdout.contains(&format!("out-{i}\n")), "out-{i}: {stdout}");
        assert!(stderr.contains(&format!("err-{i}\n")), "err-{i}");
    }
}

#[test]
fn keep_order_holds_more_waiting_jobs_than_open_files_allow() {
    let d = Dir::new();
    let events = d.path("events.jsonl");
    // Job 1 ends last: once every other job has ended.
    let script = format!(
        "if [ $1 = 1 ]; then while ! {}; do sleep 0.01; done; fi; echo out-$1; echo err-$1 >&2",
        ended_at_least(&events, JOBS - 1)
    );
    let out = exec_with_few_files(&d, &events, &["-k", "sh", "-c", &script, "sh", "{}"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    all_printed(out.status.code(), &stdout, &stderr);
    let expected: String = (1..=JOBS).map(|i| format!("out-{i}\n")).collect();
    assert_eq!(stdout, expected, "in input order");
}

#[test]
fn a_slow_reader_holds_more_ended_jobs_than_open_files_allow() {
    let d = Dir::new();
    let events = d.path("events.jsonl");
    let first_done = d.path("first-done");
    // Job 1 prints more than a pipe holds, so the printer waits for the
    // reader; the others end after it, while the test does not read.
    let script = format!(
        "if [ $1 = 1 ]; then head -c 200000 /dev/zero | tr '\\0' x; echo; touch {0}; \
         else while [ ! -e {0} ]; do sleep 0.01; done; fi; echo out-$1; echo err-$1 >&2",
        first_done.display()
    );
    let mut child = exec_with_few_files(&d, &events, &["sh", "-c", &script, "sh", "{}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out_pipe, mut err_pipe) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err_pipe.read_to_string(&mut s).unwrap();
        s
    });
    let done = ended_at_least(&events, JOBS);
    wait_until(Duration::from_secs(120), "every job ended", || {
        Command::new("sh")
            .args(["-c", &done])
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut stdout = String::new();
    out_pipe.read_to_string(&mut stdout).unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(60));
    all_printed(Some(code), &stdout, &stderr.join().unwrap());
}
