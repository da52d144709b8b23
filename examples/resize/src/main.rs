//! A user's own binary: it defines tasks with `#[runyard::task]`, submits
//! jobs of them, and prints what happened to each.
//!
//! ```sh
//! cargo run --release -p runyard-example-resize            # auto mode
//! cargo run --release -p runyard-example-resize -- process # thumbnails in child processes
//! ```
#![forbid(unsafe_code)]

use std::time::Duration;

use runyard::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of `thumbnail`.
#[derive(Debug, Serialize, Deserialize, Params)]
#[serde(deny_unknown_fields)]
struct Thumbnail {
    /// The image's name.
    #[param(min_len = 1)]
    image: String,
    /// Width of the thumbnail, in pixels.
    #[param(min = 16, max = 4096)]
    width: u32,
}

/// Makes a thumbnail (here: a checksum standing in for the pixels), and
/// says which process made it.
#[task(kind = "cpu", max_attempts = 2)]
fn thumbnail(p: Thumbnail, ctx: &Context) -> Result<String, TaskError> {
    let mut x = p.width as u64;
    for (i, b) in p.image.bytes().cycle().take(2_000_000).enumerate() {
        if i % 500_000 == 0 {
            ctx.check()?; // a timeout stops the loop here
        }
        x = x.rotate_left(5) ^ b as u64;
    }
    Ok(format!(
        "{}@{}px:{x:016x} by process {}",
        p.image,
        p.width,
        std::process::id()
    ))
}

/// Uploads a thumbnail (an async wait standing in for a network call).
#[task(worker_concurrency = 4, timeout = "2s")]
async fn upload(_: (), _ctx: Context) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Fails twice, then succeeds: retries at work.
#[task(max_attempts = 5, backoff = "exponential:10ms,cap=100ms")]
fn flaky(_: (), ctx: &Context) -> Result<u32, TaskError> {
    if ctx.attempt() < 3 {
        return Err(TaskError::retryable(format!(
            "not yet (attempt {})",
            ctx.attempt()
        )));
    }
    Ok(ctx.attempt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing: in a child process (process mode starts this binary as
    // its child processes), run the child's role and exit.
    runyard::process::enter_if_child();
    let mode: Mode = match std::env::args().nth(1) {
        Some(m) => m.parse()?,
        None => Mode::Auto,
    };
    let registry = Registry::linked()?;
    let config = EngineConfig::builder()
        .mode(mode)
        .process(runyard::process::ProcessConfig::current_exe()?)
        .build()?;
    let engine = Engine::new(registry, config);
    let mut jobs = Vec::new();
    for (i, image) in ["cat.png", "dog.png", "owl.png"].into_iter().enumerate() {
        // Jobs by type: the task's name and its parameters are checked by
        // the compiler.
        jobs.push(thumbnail::job(Thumbnail {
            image: image.to_string(),
            width: 64 << i,
        }));
        // An async task runs on tokio whatever the run's mode.
        jobs.push(upload::job(()).mode(Mode::Auto));
    }
    jobs.push(flaky::job(()).max_attempts(4));
    let report = engine.run(jobs)?;
    for job in &report.jobs {
        println!(
            "#{} {:<10} {:<9} attempts={} output={}",
            job.id,
            job.task,
            job.state,
            job.attempts.len(),
            job.output.as_json()
        );
    }
    let s = &report.summary;
    println!(
        "{} jobs: {} succeeded, {} dead in {:.0} ms, in {mode} mode (this is process {})",
        s.jobs,
        s.succeeded,
        s.dead,
        s.wall_ms,
        std::process::id()
    );
    Ok(())
}
