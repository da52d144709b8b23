//! `runyard worker`: drains a shared queue under a name until stopped.
//!
//! Plan (the tasks it takes, the engine's configuration and the `--events`
//! path checked; nothing opened), then the queue opened (waiting for a
//! PostgreSQL server that is not up yet), the name registered and the
//! events file created, then the engine run until an interrupt drains it;
//! the name is given back, and an output that failed is told (exit 3).
//! With `--listen`, the worker's own metrics and its health checks are
//! served on that address (checked in the plan, bound once the queue is
//! open) for as long as it drains.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use runyard::event::EventSink;
use runyard::queue::{LiveWorker, NameTaken, Queue, TaskName, WorkerInfo};
use runyard::{Engine, EngineConfig, Mode, Registry, RunError, Worker};

use crate::exit::{Exit, RunnerFailure, UsageError};
use crate::flags::Color;
use crate::interrupt::on_interrupts;
use crate::jobs::unknown_task_message;
use crate::output::human::{Human, JobLines};
use crate::output::report::{check_outputs, OutputPaths, RunOutputs};
use crate::queues;

use super::worker_config;

pub(crate) use super::worker_args::WorkerArgs;

/// What a worker does, checked before anything is opened.
struct Plan {
    engine: Engine,
    /// `--name`; else the engine's default (host and process id).
    name: Option<String>,
    outputs: OutputPaths,
    /// `--listen`: where to serve the worker's metrics, and its token.
    listen: Option<Listen>,
    /// The tasks it claims (the labels its metrics start with).
    tasks: Vec<TaskName>,
}

/// `--listen` and the token that guards it, checked.
struct Listen {
    addr: SocketAddr,
    token: Option<String>,
}

/// The worker's metrics server, running on a thread of its own until
/// stopped.
struct MetricsServer {
    stop: runyard_serve::Stop,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Binds `listen`, says where, and serves `metrics` there.
    fn start(
        listen: Listen,
        args: &WorkerArgs,
        queue: &Arc<dyn Queue>,
        metrics: Arc<runyard_serve::WorkerMetrics>,
    ) -> anyhow::Result<MetricsServer> {
        let listener = TcpListener::bind(listen.addr).map_err(|e| {
            RunnerFailure(format!("--listen: cannot listen on {}: {e}", listen.addr))
        })?;
        let addr = listener.local_addr()?;
        errln!(
            "runyard worker: listening on http://{addr} for /metrics, /healthz and /readyz{}",
            if listen.token.is_some() {
                ", with a token"
            } else {
                ""
            }
        );
        let config = runyard_serve::Config {
            addr,
            token: listen.token,
            read_only: true,
            queue_name: args.queue().display(),
            ready_timeout: Duration::from_secs(5),
            program: "runyard worker",
        };
        let stop = runyard_serve::Stop::new();
        let (s, queue) = (stop.clone(), Arc::clone(queue));
        let thread = std::thread::Builder::new()
            .name("runyard-metrics".into())
            .spawn(move || runyard_serve::serve_worker(queue, listener, config, metrics, s))
            .map_err(|e| RunnerFailure(format!("--listen: cannot start its thread: {e}")))?;
        Ok(MetricsServer { stop, thread })
    }

    /// Stops serving once the requests under way are answered.
    fn stop(self) {
        self.stop.stop();
        if let Ok(Err(e)) = self.thread.join() {
            errln!("runyard worker: serving metrics failed: {e}");
        }
    }
}

pub(crate) fn main(
    args: WorkerArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<Exit> {
    let args = worker_config::merge(args)?;
    let Plan {
        engine,
        name,
        outputs,
        listen,
        tasks,
    } = plan(&args, registry)?;
    let queue = queues::open_waiting(args.queue())?;
    let mut worker = engine.worker(Arc::clone(&queue));
    if let Some(name) = name {
        worker = worker.name(name);
    }
    let server = match listen {
        Some(listen) => {
            let metrics = Arc::new(runyard_serve::WorkerMetrics::new(
                tasks.iter().map(|t| t.as_ref()),
                !args.no_schedules,
            ));
            worker = worker.meter(Arc::clone(&metrics) as Arc<dyn runyard::event::Meter>);
            Some(MetricsServer::start(listen, &args, &queue, metrics)?)
        }
        None => None,
    };
    let name = worker.worker_name().to_string();
    let exit = register(
        &*queue,
        &WorkerInfo::this_process(name.clone(), args.lease()),
    )
    .and_then(|()| match outputs.open() {
        Ok(o) => Ok(o),
        Err(e) => {
            let _ = queue.unregister_worker(&name);
            Err(e.into())
        }
    })
    .and_then(|outputs| {
        let exit = drain(&args, worker, &queue, &name, outputs, color);
        // Its name is free at once (were this to fail, once its
        // heartbeat lapses).
        let _ = queue.unregister_worker(&name);
        exit
    });
    if let Some(s) = server {
        s.stop();
    }
    exit
}

/// Runs the engine on the queue until an interrupt drains it; then tells
/// what failed.
fn drain(
    args: &WorkerArgs,
    worker: Worker,
    queue: &Arc<dyn Queue>,
    name: &str,
    outputs: RunOutputs,
    color: Color,
) -> anyhow::Result<Exit> {
    let human = Human::new(false, color);
    let mut sinks: Vec<Arc<dyn EventSink>> = outputs.events_sink().into_iter().collect();
    if !args.quiet {
        sinks.push(Arc::new(JobLines {
            human: human.clone(),
            queue: Arc::clone(queue),
        }));
    }
    let run = worker.sinks(sinks).start()?;
    let grace = runyard::duration::format_duration(args.grace());
    on_interrupts(
        run.interrupter(),
        "runyard worker",
        format!(
            "stopping: claiming no more jobs; running attempts may finish (up to {grace}), \
             the rest go back to the queue; interrupt again to cancel them"
        ),
        args.quiet,
    );
    if !args.quiet {
        errln!(
            "runyard worker `{name}` draining {}",
            args.queue().display()
        );
    }
    match run.join() {
        Ok(_) => {}
        Err(RunError::Stopped { error, .. }) => {
            return Err(anyhow::Error::new(error).context("the worker stopped"));
        }
        Err(e) => return Err(e.into()),
    }
    // An output that cannot be written does not stop the worker: each is
    // reported once when it ends (exit code 3).
    let failures: Vec<RunnerFailure> = outputs
        .events_failure()
        .into_iter()
        .chain(human.failure())
        .collect();
    check_outputs(failures)?;
    Ok(Exit::Success)
}

/// The worker's engine and name: its tasks (its own, or those `--tasks`
/// names) and its configuration, checked.
fn plan(args: &WorkerArgs, registry: Arc<Registry>) -> anyhow::Result<Plan> {
    args.queue().require_lasting("worker")?;
    let tasks = tasks(args.tasks.as_deref(), &registry)?;
    let claimed = tasks.clone();
    let mut config = EngineConfig::builder()
        .mode(args.mode.unwrap_or(Mode::Auto))
        .grace(args.grace())
        .lease(args.lease())
        .schedules(!args.no_schedules)
        .tasks(claimed);
    if let Some(j) = args.concurrency {
        config = config.concurrency(j as usize);
    }
    if let Some(pc) = args.process.config(None) {
        config = config.process(pc);
    }
    let config = config.build().map_err(|e| UsageError(e.to_string()))?;
    let name = args.name.clone();
    let outputs = OutputPaths::check(None, args.events.as_ref())?;
    let listen = listen(args)?;
    Ok(Plan {
        engine: Engine::new(registry, config),
        name,
        outputs,
        listen,
        tasks,
    })
}

/// `--listen` with its token, by the rules of `runyard serve`: no address
/// but a loopback one without a token.
fn listen(args: &WorkerArgs) -> anyhow::Result<Option<Listen>> {
    let Some(addr) = args.listen else {
        if args.token_file.is_some() {
            let from = args.token_from.as_deref().unwrap_or("--token-file");
            return Err(UsageError(format!(
                "a token file ({from}) guards the address of --listen: give --listen ADDR too \
                 (or `listen` by its variable or the --config file), or leave the token file out"
            ))
            .into());
        }
        return Ok(None);
    };
    let token = super::serve::token(args.token_file.as_deref(), args.token_from.as_deref())?;
    runyard_serve::check_listen(&addr, token.is_some())
        .map_err(|e| UsageError(format!("--listen: {e}")))?;
    Ok(Some(Listen { addr, token }))
}

/// The tasks a worker claims jobs of: its own, or those `--tasks` names.
/// Jobs of other tasks wait for workers that have them.
fn tasks(list: Option<&str>, registry: &Registry) -> Result<Vec<TaskName>, UsageError> {
    let Some(list) = list else {
        return Ok(registry.iter().map(|t| TaskName::from(t.name())).collect());
    };
    let mut names = Vec::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        registry
            .lookup(t)
            .map_err(|e| UsageError(format!("--tasks: {}", unknown_task_message(&e))))?;
        names.push(TaskName::from(t));
    }
    if names.is_empty() {
        return Err(UsageError("--tasks needs at least one task name".into()));
    }
    Ok(names)
}

/// Registers the worker under its name. A name whose holder still
/// heartbeats is refused (exit 2, naming the holder). A holder whose
/// heartbeats have stopped (it died moments ago, and its registration has
/// not lapsed yet) is waited for until it lapses and the name is taken
/// over: a service restarted at once after a crash starts, instead of
/// failing until then.
fn register(queue: &dyn Queue, me: &WorkerInfo) -> anyhow::Result<()> {
    let mut first: Option<LiveWorker> = None;
    loop {
        let holder = match queue
            .register_worker(me)
            .context("registering the worker")?
        {
            Ok(()) => {
                if first.is_some() {
                    errln!(
                        "runyard worker: the name `{}` was free again; taking it",
                        me.name
                    );
                }
                return Ok(());
            }
            Err(NameTaken(holder)) => holder,
        };
        match &first {
            None => {
                errln!(
                    "runyard worker: the name `{}` is held by pid {} on {} (last heartbeat at {}); \
                     waiting to see whether it still heartbeats (it is taken over if it does not)",
                    me.name, holder.worker.pid, holder.worker.host, holder.last_heartbeat
                );
                first = Some(holder.clone());
            }
            Some(f)
                if (&f.worker, f.started_at, f.last_heartbeat)
                    != (&holder.worker, holder.started_at, holder.last_heartbeat) =>
            {
                return Err(UsageError(format!(
                    "{}; give this worker another --name, or stop that one first",
                    NameTaken(holder)
                ))
                .into());
            }
            Some(_) => {}
        }
        // Ten looks per lease: the holder heartbeats every third of it.
        let pause =
            (holder.worker.lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        std::thread::sleep(pause);
    }
}
