//! `runyard bench`: the workloads of docs/BENCHMARKS.md, driven through the same
//! public API a user's program uses (registered tasks, jobs, the worker
//! loop, the retry policy, the report). Prints one JSON line on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use runyard::queue::{MemoryQueue, Queue};
use runyard::{Engine, EngineConfig, JobSpec, Mode, Registry, ReportReader, Timestamp};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::flags::{parse_mode, parse_positive_duration, ProcessFlags};
use crate::queues::{parse_queue_url, QueueUrl};

mod curve;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// B1: N no-op jobs submitted one by one, thread mode, pool = cores.
    NoopThread {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// B2: N concurrent async sleeps.
    SleepAsync {
        #[arg(long, default_value_t = 100_000)]
        n: u64,
        #[arg(long, default_value = "1s", value_parser = parse_positive_duration)]
        sleep: Duration,
    },
    /// B3: N blocking sleeps on a pool of WORKERS threads.
    SleepThread {
        #[arg(long, default_value_t = 200)]
        n: u64,
        #[arg(long, default_value = "500ms", value_parser = parse_positive_duration)]
        sleep: Duration,
        #[arg(long, default_value_t = 100)]
        workers: usize,
    },
    /// B4: N `cpu` jobs of ROUNDS steps with 1 worker, then 2: the speedup.
    CpuScale {
        #[arg(long, default_value_t = 8)]
        n: u64,
        #[arg(long, default_value_t = 120_000_000)]
        rounds: u64,
        #[arg(long, default_value = "thread", value_parser = parse_mode)]
        mode: Mode,
    },
    /// SEED: the original design's demo, 4 `cpu` + 4 `io` jobs in auto mode.
    Seed,
    /// B5: N no-op jobs submitted one by one, process mode, WORKERS worker
    /// processes (started before the timing, as the peers' pools are).
    NoopProcess {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// B7: N no-op jobs enqueued in batches of BATCH into a durable queue,
    /// then drained by this process's engine; then SAMPLES jobs enqueued one
    /// at a time into the idle engine, for the enqueue-to-start latency.
    Queue {
        #[arg(long, default_value_t = 100_000)]
        n: u64,
        /// The queue: sqlite://PATH (a scratch file: a runyard state file
        /// there is replaced), postgres://... (a scratch schema,
        /// `runyard_bench` unless the URL names one with ?schema=: a runyard
        /// queue there is dropped) or memory.
        #[arg(long, value_name = "URL", value_parser = parse_queue_url)]
        queue: QueueUrl,
        /// Jobs per enqueue call (one transaction each).
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Spread the jobs over K concurrency keys (`bench:0` .. `bench:K-1`, round-robin).
        #[arg(long, value_name = "K", value_parser = crate::flags::parse_at_least_one_u32)]
        keys: Option<u32>,
        /// With --keys: each key's limit, the most of its jobs at once.
        #[arg(long, value_name = "N", requires = "keys", value_parser = crate::flags::parse_at_least_one_u32)]
        key_concurrency: Option<u32>,
        /// Enqueue each job with a unique key of its own.
        #[arg(long)]
        unique: bool,
        /// Enqueue the N jobs with a run-at an hour ahead and do not drain
        /// them: the idle latency is then taken with them in the queue,
        /// scheduled for later (the drain's figures are left out).
        #[arg(long)]
        later: bool,
        /// Count the drain's work as `runyard worker --listen` does, and
        /// serve those metrics on ADDR (a loopback address): what a
        /// worker's metering costs its drain.
        #[arg(long, value_name = "ADDR", value_parser = super::serve_args::parse_listen)]
        listen: Option<std::net::SocketAddr>,
    },
    /// B8: workflows on a queue. A chain of CHAIN `noop` jobs, each after
    /// the one before (`hop_p50_ms`: from one job's recorded end to the
    /// next one's recorded start), then FANOUT `noop` jobs and one job after
    /// all of them (`tasks_per_s`), beside FANOUT plain `noop` jobs drained
    /// the same way in the same run (`plain_tasks_per_s`).
    Dag {
        /// The queue, as for `bench queue`; memory when left out.
        #[arg(long, value_name = "URL", value_parser = parse_queue_url)]
        queue: Option<QueueUrl>,
        #[arg(long, default_value_t = 1000)]
        chain: u64,
        #[arg(long, default_value_t = 10_000)]
        fanout: u64,
    },
    /// B6: N `shell` jobs running `true`, PARALLEL at a time.
    Shell {
        #[arg(long, default_value_t = 2000)]
        n: u64,
        #[arg(long, default_value_t = 2)]
        parallel: usize,
    },
    /// B10: cost as the work grows. B1, B7 (on a scratch SQLite file, and
    /// on each --queue) and B6 at each of SIZES jobs, each in a `runyard
    /// bench` process of its own; one JSON line per workload and count,
    /// with `size`, `run`, `loadavg` and what the rate and the peak RSS
    /// are of (`rate_of`, `peak_rss_of`).
    Curve(curve::CurveArgs),
}

#[derive(Serialize)]
struct Line {
    workload: &'static str,
    peer: &'static str,
    tasks: u64,
    wall_s: f64,
    tasks_per_s: f64,
    peak_rss_mb: Option<f64>,
    cores: usize,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn emit(
    workload: &'static str,
    peer: &'static str,
    tasks: u64,
    wall: Duration,
    extra: Value,
) -> Result<(), RunnerFailure> {
    let Value::Object(extra) = extra else {
        unreachable!("extras are an object")
    };
    let line = Line {
        workload,
        peer,
        tasks,
        wall_s: round6(wall.as_secs_f64()),
        tasks_per_s: round6(tasks as f64 / wall.as_secs_f64()),
        peak_rss_mb: peak_rss_mb().map(round6),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        extra,
    };
    outln!("{}", serde_json::to_string(&line).expect("serializable"))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One run: the jobs submitted one by one, then waited for.
struct Timed {
    /// From the first submit to the end of the run.
    wall: Duration,
    /// From the first submit to the last.
    submit: Duration,
    /// The ended run, its report not read yet.
    ended: ReportReader,
}

fn timed_run(engine: &Engine, jobs: &[(JobSpec, u64)]) -> anyhow::Result<Timed> {
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = engine.start(Arc::clone(&queue))?;
    let t0 = Instant::now();
    for (spec, count) in jobs {
        for _ in 0..*count {
            run.submit(spec)?;
        }
    }
    let submit = t0.elapsed();
    run.close();
    let ended = run.join()?;
    let wall = t0.elapsed();
    let c = queue.counts()?;
    let total: u64 = jobs.iter().map(|(_, n)| n).sum();
    if c.succeeded != total {
        bail!("only {} of {total} jobs succeeded ({c:?})", c.succeeded);
    }
    Ok(Timed {
        wall,
        submit,
        ended,
    })
}

fn engine(registry: &Arc<Registry>, mode: Mode, j: Option<usize>) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::builder().mode(mode);
    if let Some(j) = j {
        config = config.concurrency(j);
    }
    if let Some(pc) = ProcessFlags::none().config(j) {
        config = config.process(pc);
    }
    Ok(Engine::new(Arc::clone(registry), config.build()?))
}

fn spec(task: &str, params: Value) -> anyhow::Result<JobSpec> {
    Ok(JobSpec::new(task).params(&params)?)
}

pub(crate) fn main(args: BenchArgs, registry: Arc<Registry>) -> anyhow::Result<Exit> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match args.workload {
        Workload::NoopThread { n } => noop_thread(&registry, cores, n)?,
        Workload::SleepAsync { n, sleep } => sleep_async(&registry, n, sleep)?,
        Workload::SleepThread { n, sleep, workers } => sleep_thread(&registry, n, sleep, workers)?,
        Workload::CpuScale { n, rounds, mode } => cpu_scale(&registry, n, rounds, mode)?,
        Workload::Shell { n, parallel } => shell(&registry, n, parallel)?,
        Workload::NoopProcess { n, workers } => noop_process(&registry, n, workers)?,
        Workload::Seed => seed(&registry)?,
        Workload::Curve(args) => curve::main(args)?,
        Workload::Dag {
            queue,
            chain,
            fanout,
        } => dag_bench(&registry, queue.as_ref(), chain, fanout)?,
        Workload::Queue {
            n,
            queue,
            batch,
            samples,
            keys,
            key_concurrency,
            unique,
            later,
            listen,
        } => {
            if let Some(addr) = listen.filter(|a| !a.ip().is_loopback()) {
                return Err(UsageError(format!(
                    "--listen {addr}: give a loopback address, e.g. 127.0.0.1:0 (the benchmark \
                     serves its metrics without a token)"
                ))
                .into());
            }
            if batch == 0 {
                return Err(UsageError("--batch must be at least 1".into()).into());
            }
            let flow = QueueFlow {
                keys,
                key_concurrency,
                unique,
                later,
            };
            queue_bench(&registry, n, &queue, batch, samples, flow, listen)?;
        }
    }
    Ok(Exit::Success)
}

/// The workload B1 (see [`Workload`]).
fn noop_thread(registry: &Arc<Registry>, cores: usize, n: u64) -> anyhow::Result<()> {
    let e = engine(registry, Mode::Thread, Some(cores))?;
    let r = timed_run(&e, &[(JobSpec::new("noop"), n)])?;
    // The report of every job, read back after the timing.
    let t = Instant::now();
    let s = r.ended.summary()?;
    emit(
        "B1 noop-thread",
        "runyard",
        n,
        r.wall,
        json!({
            "succeeded": s.succeeded,
            "attempts": s.attempts,
            "submit_s": round6(r.submit.as_secs_f64()),
            "report_s": round6(t.elapsed().as_secs_f64()),
        }),
    )?;
    Ok(())
}

/// The workload B2 (see [`Workload`]).
fn sleep_async(registry: &Arc<Registry>, n: u64, sleep: Duration) -> anyhow::Result<()> {
    // The workload is N waits at once: -j N, as `runyard run --mode async -j N` would ask.
    let e = engine(registry, Mode::Async, Some(n as usize))?;
    let job = spec(
        "sleep",
        json!({"duration": runyard::duration::format_duration(sleep)}),
    )?;
    let wall = timed_run(&e, &[(job, n)])?.wall;
    emit(
        "B2 sleep-async",
        "runyard",
        n,
        wall,
        json!({
            "overhead_s": round6((wall.as_secs_f64() - sleep.as_secs_f64()).max(0.0)),
            "concurrency": n,
        }),
    )?;
    Ok(())
}

/// The workload B3 (see [`Workload`]).
fn sleep_thread(
    registry: &Arc<Registry>,
    n: u64,
    sleep: Duration,
    workers: usize,
) -> anyhow::Result<()> {
    if workers == 0 {
        return Err(UsageError("--workers must be at least 1".into()).into());
    }
    let e = engine(registry, Mode::Thread, Some(workers))?;
    let job = spec(
        "sleep",
        json!({"duration": runyard::duration::format_duration(sleep)}),
    )?;
    let wall = timed_run(&e, &[(job, n)])?.wall;
    let ideal = sleep.as_secs_f64() * (n as f64 / workers as f64).ceil();
    emit(
        "B3 sleep-thread",
        "runyard",
        n,
        wall,
        json!({"overhead_s": round6(wall.as_secs_f64() - ideal), "workers": workers}),
    )?;
    Ok(())
}

/// The workload B4 (see [`Workload`]).
fn cpu_scale(registry: &Arc<Registry>, n: u64, rounds: u64, mode: Mode) -> anyhow::Result<()> {
    if !matches!(mode, Mode::Thread | Mode::Process) {
        return Err(UsageError("cpu-scale runs in --mode thread or --mode process".into()).into());
    }
    let job = spec("cpu", json!({"n": rounds}))?;
    let mut walls = Vec::new();
    let mut outputs = Vec::new();
    for workers in [1, 2] {
        let e = engine(registry, mode, Some(workers))?;
        let t = timed_run(&e, &[(job.clone(), n)])?;
        walls.push(t.wall);
        let r = t.ended.report()?;
        outputs.push(
            r.jobs
                .iter()
                .map(|j| j.output.as_json().to_string())
                .collect::<Vec<_>>(),
        );
    }
    if outputs[0] != outputs[1] {
        bail!("the checksums of the 1-worker and 2-worker runs differ");
    }
    let speedup = walls[0].as_secs_f64() / walls[1].as_secs_f64();
    emit(
        "B4 cpu-scale",
        "runyard",
        n,
        walls[1],
        json!({
            "mode": mode.as_str(),
            "wall_1w_s": round6(walls[0].as_secs_f64()),
            "wall_2w_s": round6(walls[1].as_secs_f64()),
            "speedup": round6(speedup),
            "task_s": round6(walls[0].as_secs_f64() / n as f64),
            "checksum": outputs[0].first().cloned().unwrap_or_default(),
        }),
    )?;
    Ok(())
}

/// The workload B6 (see [`Workload`]).
fn shell(registry: &Arc<Registry>, n: u64, parallel: usize) -> anyhow::Result<()> {
    if parallel == 0 {
        return Err(UsageError("--parallel must be at least 1".into()).into());
    }
    let e = engine(registry, Mode::Auto, Some(parallel))?;
    let job = spec("shell", json!({"cmd": ["true"]}))?;
    let wall = timed_run(&e, &[(job, n)])?.wall;
    emit(
        "B6 shell",
        "runyard",
        n,
        wall,
        json!({"parallel": parallel}),
    )?;
    Ok(())
}

/// The workload B5 (see [`Workload`]).
fn noop_process(registry: &Arc<Registry>, n: u64, workers: usize) -> anyhow::Result<()> {
    if workers == 0 {
        return Err(UsageError("--workers must be at least 1".into()).into());
    }
    let e = engine(registry, Mode::Process, Some(workers))?;
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let run = e.start(Arc::clone(&queue))?;
    // Warm the pool: its workers start with the first jobs.
    let t = Instant::now();
    let noop = JobSpec::new("noop");
    for _ in 0..workers * 4 {
        run.submit(&noop)?;
    }
    while queue.counts()?.succeeded < (workers * 4) as u64 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pool_start = t.elapsed();
    let t0 = Instant::now();
    for _ in 0..n {
        run.submit(&noop)?;
    }
    run.close();
    run.join()?;
    let wall = t0.elapsed();
    let c = queue.counts()?;
    let total = n + (workers * 4) as u64;
    if c.succeeded != total {
        bail!("only {} of {total} jobs succeeded ({c:?})", c.succeeded);
    }
    emit(
        "B5 noop-process",
        "runyard",
        n,
        wall,
        json!({"workers": workers, "pool_start_s": round6(pool_start.as_secs_f64())}),
    )?;
    Ok(())
}

/// The workload SEED (see [`Workload`]).
fn seed(registry: &Arc<Registry>) -> anyhow::Result<()> {
    let e = engine(registry, Mode::Auto, None)?;
    let jobs = [
        (spec("cpu", json!({"n": 10_000_000}))?, 4),
        (spec("io", json!({"duration": "1s"}))?, 4),
    ];
    let wall = timed_run(&e, &jobs).context("the seed workload")?.wall;
    emit(
        "SEED auto 4cpu+4io",
        "runyard",
        8,
        wall,
        json!({"mode": "auto"}),
    )?;
    Ok(())
}

/// The flow control of B7's jobs: concurrency keys, unique keys; and
/// whether they are scheduled for later and left undrained.
#[derive(Debug, Clone, Copy)]
struct QueueFlow {
    keys: Option<u32>,
    key_concurrency: Option<u32>,
    unique: bool,
    later: bool,
}

impl QueueFlow {
    /// Job `i` of the benchmark, from the plain `job`.
    fn job(&self, job: &runyard::queue::NewJob, i: u64) -> anyhow::Result<runyard::queue::NewJob> {
        let mut j = job.clone();
        if let Some(k) = self.keys {
            let key = runyard_core::FlowKey::new("bench", &(i % u64::from(k)).to_string())?;
            j.limits.concurrency_key = Some((key, self.key_concurrency));
        }
        if self.unique {
            j.unique = Some(runyard_core::Unique {
                key: format!("bench-{i}"),
                within: None,
                on_conflict: runyard_core::OnConflict::Skip,
            });
        }
        Ok(j)
    }
}

/// B7: enqueue, drain, and idle latency on a queue of `url`.
fn queue_bench(
    registry: &Arc<Registry>,
    n: u64,
    url: &QueueUrl,
    batch: usize,
    samples: usize,
    flow: QueueFlow,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let (queue, backend) = scratch_queue(url)?;
    // With --listen: every run metered as a worker's is, its metrics served.
    let metered = match listen {
        Some(addr) => {
            let metrics = Arc::new(runyard_serve::WorkerMetrics::new(["noop"], false));
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| RunnerFailure(format!("--listen: cannot listen on {addr}: {e}")))?;
            let config = runyard_serve::Config {
                addr: listener.local_addr()?,
                token: None,
                read_only: true,
                queue_name: backend.to_string(),
                ready_timeout: Duration::from_secs(5),
                program: "runyard bench",
            };
            let stop = runyard_serve::Stop::new();
            let (s, q, m) = (stop.clone(), Arc::clone(&queue), Arc::clone(&metrics));
            let server =
                std::thread::spawn(move || runyard_serve::serve_worker(q, listener, config, m, s));
            Some((metrics, stop, server))
        }
        None => None,
    };
    let start = |e: &Engine, sinks: Vec<Arc<dyn runyard::event::EventSink>>| match &metered {
        Some((m, _, _)) => e.start_metered(
            Arc::clone(&queue),
            sinks,
            Arc::clone(m) as Arc<dyn runyard::event::Meter>,
        ),
        None => e.start_with_sinks(Arc::clone(&queue), sinks),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let e = engine(registry, Mode::Thread, Some(cores))?;
    let job = e.prepare(&JobSpec::new("noop"))?;
    if flow.keys.is_some() || flow.unique {
        let probe = flow.job(&job, 0)?;
        runyard::queue::admit(&queue.capabilities(), std::slice::from_ref(&probe))
            .map_err(|e| UsageError(format!("--keys/--unique on {backend}: {e}")))?;
    }

    let t = Instant::now();
    let mut left = n;
    let mut next = 0u64;
    let later = flow.later.then(|| queue.now() + Duration::from_secs(3600));
    while left > 0 {
        let k = left.min(batch as u64);
        let jobs = (next..next + k)
            .map(|i| {
                let mut j = flow.job(&job, i)?;
                j.run_at = later;
                Ok(j)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        queue.enqueue(jobs)?;
        next += k;
        left -= k;
    }
    let enqueue = t.elapsed();

    let t = Instant::now();
    if !flow.later {
        let run = start(&e, Vec::new())?;
        run.close();
        run.join()?;
    }
    let drain = t.elapsed();
    let c = queue.counts()?;
    if !flow.later && c.succeeded != n {
        bail!("only {} of {n} jobs succeeded ({c:?})", c.succeeded);
    }

    // Idle latency: one job at a time into an engine with nothing to do,
    // from its enqueue to its start as the queue records them; the run's
    // events say when each job is done (no polling beside the worker).
    let (tx, rx) = std::sync::mpsc::channel();
    let ended: Arc<dyn runyard::event::EventSink> = Arc::new(Outcome(tx));
    let run = start(&e, vec![ended])?;
    let noop = JobSpec::new("noop");
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        // Let the engine go idle first.
        std::thread::sleep(Duration::from_millis(5));
        let id = run.submit(&noop)?;
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(done) if done == id => break,
                Ok(_) => {}
                Err(_) => bail!("job {id} did not finish within 30s"),
            }
        }
        let v = queue.inspect()?.get(id)?.context("the job")?;
        let started = v.attempts.first().context("an attempt")?.started_at;
        lat.push(started.since(v.enqueued_at).as_secs_f64() * 1e3);
    }
    if flow.later {
        // The scheduled jobs stay for later: stop claiming rather than
        // wait for them.
        run.interrupt();
    } else {
        run.close();
    }
    run.join()?;
    if let Some((_, stop, server)) = metered {
        stop.stop();
        let _ = server.join();
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    emit(
        if flow.later {
            "B7 queue, scheduled for later (not drained)"
        } else {
            "B7 queue"
        },
        "runyard",
        n,
        drain,
        json!({
            "queue": backend,
            "enqueue_per_s": round6(n as f64 / enqueue.as_secs_f64()),
            "enqueue_s": round6(enqueue.as_secs_f64()),
            "batch": batch,
            "p50_latency_ms": pct(0.5).map(round6),
            "p95_latency_ms": pct(0.95).map(round6),
            "latency_samples": lat.len(),
            "keys": flow.keys,
            "key_concurrency": flow.key_concurrency,
            "unique": flow.unique,
            "later": flow.later,
            "metered": listen.is_some(),
        }),
    )?;
    Ok(())
}

/// A fresh queue for a benchmark at `url`, and its backend's name.
fn scratch_queue(url: &QueueUrl) -> anyhow::Result<(Arc<dyn Queue>, &'static str)> {
    Ok(match url {
        QueueUrl::Memory => (Arc::new(MemoryQueue::new()), "memory"),
        QueueUrl::Sqlite(path) => (scratch_sqlite(path)?, "sqlite"),
        QueueUrl::Postgres(u) => (scratch_postgres(u)?, "postgres"),
    })
}

/// B8: a chain, a fan-out into one fan-in, and a plain drain of the same
/// size, each enqueued in one batch and then drained by a run of its own
/// on the same queue.
fn dag_bench(
    registry: &Arc<Registry>,
    url: Option<&QueueUrl>,
    chain: u64,
    fanout: u64,
) -> anyhow::Result<()> {
    use runyard::queue::NewJob;
    use runyard::workflow::{After, Parent};
    if chain < 2 || fanout < 1 {
        bail!(UsageError(
            "bench dag needs --chain of at least 2 and --fanout of at least 1".into()
        ));
    }
    let (queue, backend) = scratch_queue(url.unwrap_or(&QueueUrl::Memory))?;
    if !queue
        .capabilities()
        .has(runyard::queue::Capability::Dependencies)
    {
        bail!(UsageError(format!(
            "the {backend} queue does not keep dependencies between jobs"
        )));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let e = engine(registry, Mode::Thread, Some(cores))?;
    let noop = e.prepare(&JobSpec::new("noop"))?;
    let edge = |i: usize, key: &str, many: bool| After {
        parent: Parent::Batch(i),
        key: key.to_string(),
        many,
    };
    let drain = |jobs: Vec<NewJob>| -> anyhow::Result<(Vec<runyard::JobId>, Duration, Duration)> {
        let t = Instant::now();
        let ids: Vec<_> = queue.enqueue(jobs)?.into_iter().map(|e| e.id()).collect();
        let enqueue = t.elapsed();
        let t = Instant::now();
        let run = e.start(Arc::clone(&queue))?;
        run.close();
        run.join()?;
        Ok((ids, enqueue, t.elapsed()))
    };

    // The chain: each job after the one before.
    let jobs: Vec<NewJob> = (0..chain as usize)
        .map(|i| {
            let mut j = noop.clone();
            if i > 0 {
                j.after = vec![edge(i - 1, "prev", false)];
            }
            j
        })
        .collect();
    let (ids, _, chain_wall) = drain(jobs)?;
    let mut ends: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(ids.len());
    for id in &ids {
        let v = queue.inspect()?.get(*id)?.context("a chain job")?;
        if v.state != runyard::JobState::Succeeded {
            bail!("chain job {id} ended {}", v.state);
        }
        let a = v.attempts.last().context("an attempt")?;
        ends.push((a.started_at, a.started_at + a.duration()));
    }
    let mut hops: Vec<f64> = ends
        .windows(2)
        .map(|w| w[1].0.since(w[0].1).as_secs_f64() * 1e3)
        .collect();
    hops.sort_by(f64::total_cmp);
    let pct = |p: f64| hops[((hops.len() as f64 - 1.0) * p).round() as usize];

    // A fan-out of FANOUT copies of one name, and one job after them all.
    let n = fanout as usize;
    let mut jobs: Vec<NewJob> = (0..n)
        .map(|_| {
            let mut j = noop.clone();
            j.name = Some("shard".into());
            j
        })
        .collect();
    let mut fan_in = noop.clone();
    fan_in.after = (0..n).map(|i| edge(i, "shard", true)).collect();
    jobs.push(fan_in);
    let (_, fan_enqueue, fan_wall) = drain(jobs)?;
    // The same number of plain jobs, drained the same way.
    let (_, plain_enqueue, plain_wall) = drain(vec![noop.clone(); n + 1])?;
    let c = queue.counts()?;
    let total = chain + 2 * (fanout + 1);
    if c.succeeded != total {
        bail!("only {} of {total} jobs succeeded ({c:?})", c.succeeded);
    }
    let rate = |w: Duration| round6((n + 1) as f64 / w.as_secs_f64());
    emit(
        "B8 dag",
        "runyard",
        fanout + 1,
        fan_wall,
        json!({
            "queue": backend,
            "chain": chain,
            "chain_wall_s": round6(chain_wall.as_secs_f64()),
            "hop_p50_ms": round6(pct(0.5)),
            "hop_p95_ms": round6(pct(0.95)),
            "fanout": fanout,
            "fanout_enqueue_s": round6(fan_enqueue.as_secs_f64()),
            "plain_tasks_per_s": rate(plain_wall),
            "plain_enqueue_s": round6(plain_enqueue.as_secs_f64()),
            "fanout_vs_plain": round6(plain_wall.as_secs_f64() / fan_wall.as_secs_f64()),
        }),
    )?;
    Ok(())
}

/// Tells which jobs ended.
struct Outcome(std::sync::mpsc::Sender<runyard::JobId>);

impl runyard::event::EventSink for Outcome {
    fn event(&self, e: &runyard::event::Event<'_>) {
        use runyard::event::Event as E;
        if let E::Succeeded { job, .. } | E::Dead { job, .. } | E::Cancelled { job, .. } = e {
            let _ = self.0.send(*job);
        }
    }
}

/// A fresh queue for the benchmark in the database at `url`: in the
/// schema the URL names, or `runyard_bench`. A runyard queue already in
/// that schema is dropped; a schema holding anything else is refused.
fn scratch_postgres(url: &str) -> anyhow::Result<Arc<dyn Queue>> {
    use runyard::postgres::{PgOptions, PgQueue, TABLES};
    let mut opts = PgOptions::from_url(url).map_err(|e| UsageError(e.to_string()))?;
    if !url.contains("schema=") {
        opts = opts.schema("runyard_bench")?;
    }
    let schema = opts.schema_name().to_string();
    let mut c = opts
        .connect_client()
        .with_context(|| format!("connecting to {}", opts.url()))?;
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(other) = tables.iter().find(|t| !TABLES.contains(&t.as_str())) {
        bail!(UsageError(format!(
            "schema `{schema}` holds a table runyard did not make (`{other}`); \
             give the benchmark a schema of its own with ?schema=NAME"
        )));
    }
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))?;
    drop(c);
    let q = PgQueue::open(opts, Arc::new(runyard::queue::SystemClock))?;
    Ok(Arc::new(q))
}

/// A fresh state file at `path` for the benchmark. A runyard state file
/// already there is replaced; anything else is refused.
fn scratch_sqlite(path: &std::path::Path) -> anyhow::Result<Arc<dyn Queue>> {
    use runyard::sqlite::{OpenMode, SqliteQueue};
    if path.exists() {
        SqliteQueue::open(path, OpenMode::Existing).map_err(|e| {
            UsageError(format!(
                "{} is not a runyard state file the benchmark may replace: {e}",
                path.display()
            ))
        })?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(
                        anyhow::Error::new(e).context(format!("removing {}", path.display()))
                    )
                }
                _ => {}
            }
        }
    }
    let q = SqliteQueue::open(path, OpenMode::CreateOrOpen)
        .map_err(|e| UsageError(format!("cannot use {}: {e}", path.display())))?;
    Ok(Arc::new(q))
}
