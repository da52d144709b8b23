//! runyard's test binary: the whole `runyard` command line, with tasks that
//! misbehave on purpose, for tests that need real crashes in real
//! processes. Not a tool for users.
// Unsafe code only for a real segmentation fault (`null_write`).
#![deny(unsafe_code)]

use std::io::Write;
use std::time::Duration;

use runyard::exec::os;
use runyard::{task, Context, Registry, TaskError};
use serde::{Deserialize, Serialize};

/// Calls `abort()`.
#[task(kind = "cpu")]
fn abort(_: ()) -> Result<(), TaskError> {
    std::process::abort()
}

/// Dereferences a null pointer (SIGSEGV).
#[task(kind = "cpu")]
fn segv(_: ()) -> Result<(), TaskError> {
    null_write();
    Ok(())
}

/// A real segmentation fault, the one unsafe code of this crate.
#[allow(unsafe_code)]
fn null_write() {
    // SAFETY: not safe at all: this task exists to crash its process.
    unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
}

/// Parameters of `exit`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields, default)]
struct Exit {
    code: i32,
}

impl Default for Exit {
    fn default() -> Exit {
        Exit { code: 3 }
    }
}

/// Calls `exit(code)`.
#[task(kind = "cpu")]
fn exit(p: Exit) -> Result<(), TaskError> {
    std::process::exit(p.code)
}

/// Parameters of `alloc`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Alloc {
    /// Bytes to allocate and touch.
    mb: u64,
}

/// Allocates `mb` megabytes and touches every page.
#[task(kind = "cpu")]
fn alloc(p: Alloc) -> Result<u64, TaskError> {
    let mut v: Vec<u8> = Vec::with_capacity((p.mb << 20) as usize);
    v.resize((p.mb << 20) as usize, 1);
    Ok(v.iter().step_by(4096).map(|b| *b as u64).sum())
}

/// Allocates `mb` megabytes and keeps them (a leak): the worker grows.
#[task(kind = "cpu")]
fn leak(p: Alloc) -> Result<u32, TaskError> {
    let v = vec![1u8; (p.mb << 20) as usize];
    std::mem::forget(v);
    Ok(std::process::id())
}

/// Sleeps forever and ignores cancellation.
#[task(kind = "blocking")]
fn hang(_: ()) -> Result<(), TaskError> {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Ignores SIGTERM, starts a `sleep` in its process group (which ignores
/// SIGTERM too), and hangs: only SIGKILL to the whole group ends them.
#[task(kind = "blocking")]
fn stubborn(_: ()) -> Result<(), TaskError> {
    let _ = os::ignore_signal(libc::SIGTERM);
    let _sleeper = std::process::Command::new("sleep").arg("3600").spawn()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// This process's id, in a worker process even in `auto` mode.
#[task(kind = "cpu", isolate)]
fn isolated_pid(_: ()) -> Result<u32, TaskError> {
    Ok(std::process::id())
}

/// Parameters of `spew`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Spew {
    mb: u64,
}

/// Prints `mb` megabytes to standard output and to standard error.
#[task(kind = "cpu")]
fn spew(p: Spew) -> Result<u64, TaskError> {
    let line = [b'x'; 1023];
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for _ in 0..(p.mb << 10) {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        err.write_all(b"e\n")?;
    }
    Ok(p.mb)
}

/// This process's id.
#[task(kind = "cpu")]
fn pid(_: ()) -> Result<u32, TaskError> {
    Ok(std::process::id())
}

/// Parameters of `chaos`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Chaos {
    /// One attempt in `one_in` crashes (which ones is decided by the job
    /// and the attempt number, so a test can work it out).
    #[param(min = 1)]
    one_in: u64,
}

/// Whether attempt `attempt` of job `job` crashes, for `chaos`.
pub fn chaos_crashes(job: u64, attempt: u32, one_in: u64) -> bool {
    let mut x = job.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (attempt as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    x.is_multiple_of(one_in)
}

/// Crashes the process on some attempts (SIGKILL to itself), else succeeds.
#[task(kind = "cpu")]
fn chaos(p: Chaos, ctx: &Context) -> Result<u64, TaskError> {
    if chaos_crashes(ctx.job_id().0, ctx.attempt(), p.one_in) {
        let _ = os::kill(std::process::id(), libc::SIGKILL);
    }
    Ok(ctx.job_id().0)
}

/// Parameters of `append`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Append {
    /// The file each execution is recorded in.
    file: std::path::PathBuf,
    /// Microseconds of work before the record is written.
    #[serde(default)]
    work_us: u64,
}

/// Appends `JOB ATTEMPT` to `file`: a test counts executions from it.
#[task(kind = "cpu")]
fn append(p: Append, ctx: &Context) -> Result<u64, TaskError> {
    let until = std::time::Instant::now() + Duration::from_micros(p.work_us);
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
    let line = format!("{} {}\n", ctx.job_id().0, ctx.attempt());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.file)?;
    // One write of one short line: O_APPEND keeps lines whole.
    f.write_all(line.as_bytes())?;
    Ok(ctx.job_id().0)
}

/// Parameters of `nap`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Nap {
    /// Milliseconds to sleep.
    ms: u64,
    /// A label the test reads back from the job's parameters (the flow
    /// tests put the job's key here).
    #[serde(default)]
    key: String,
}

/// Sleeps `ms` milliseconds, holding no core: many attempts at once.
#[task(kind = "blocking")]
fn nap(p: Nap) -> Result<u64, TaskError> {
    std::thread::sleep(Duration::from_millis(p.ms));
    Ok(p.ms)
}

/// Parameters of `step`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct Step {
    /// The file each execution's start and end are recorded in.
    file: std::path::PathBuf,
    /// Microseconds of work between the two records.
    #[serde(default)]
    work_us: u64,
}

/// Appends `S JOB ATTEMPT` to `file` as it starts and `E JOB ATTEMPT` as
/// it ends: a test of jobs after jobs checks from it that no job started
/// before the jobs it is after had ended.
#[task(kind = "cpu")]
fn step(p: Step, ctx: &Context) -> Result<u64, TaskError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.file)?;
    let (job, attempt) = (ctx.job_id().0, ctx.attempt());
    // One write of one short line each: O_APPEND keeps lines whole and in
    // the order they were written, across processes.
    f.write_all(format!("S {job} {attempt}\n").as_bytes())?;
    let until = std::time::Instant::now() + Duration::from_micros(p.work_us);
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
    f.write_all(format!("E {job} {attempt}\n").as_bytes())?;
    Ok(job)
}

/// Parameters of `tick`.
#[derive(Debug, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
struct TickParams {
    /// The file each tick is recorded in.
    file: std::path::PathBuf,
    /// The attempt succeeds once this file exists.
    until: std::path::PathBuf,
}

/// Appends `JOB ATTEMPT MICROS` (the wall clock, in microseconds since
/// the Unix epoch) to `file` every 50 ms while it runs, until the file
/// `until` exists or its attempt is stopped: a test reads from it when
/// each attempt last ran.
#[task(kind = "blocking")]
fn tick(p: TickParams, ctx: &Context) -> Result<u64, TaskError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.file)?;
    let (job, attempt) = (ctx.job_id().0, ctx.attempt());
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        // One write of one short line: O_APPEND keeps lines whole.
        f.write_all(format!("{job} {attempt} {now}\n").as_bytes())?;
        if p.until.exists() {
            return Ok(job);
        }
        ctx.sleep(Duration::from_millis(50))?;
    }
}

fn main() -> std::process::ExitCode {
    runyard_cli::main_with(|| {
        Ok(Registry::builder()
            .tasks(runyard_builtins::tasks())
            .linked()
            .build()?)
    })
}
