//! Starting a lane's executor: the CPU pool, the elastic blocking pool, the
//! async executor (on a tokio runtime built on first use) or the worker
//! processes.

use std::io;
use std::sync::Arc;

use runyard_exec::process::ProcessPool;
use runyard_exec::{AsyncExecutor, Executor, PoolConfig, Sink, ThreadPool};

use crate::config::cores;
use crate::lane::Lane;
use crate::shared::EngineInner;

/// Starts `lane`'s executor, running `threads` attempts at once and
/// reporting to `sink`; `runtime` is the async lane's, built here the
/// first time it is needed.
pub(super) fn start(
    lane: Lane,
    threads: usize,
    engine: &EngineInner,
    sink: Arc<dyn Sink>,
    runtime: &mut Option<tokio::runtime::Runtime>,
) -> io::Result<Arc<dyn Executor>> {
    let reg = Arc::clone(&engine.registry);
    Ok(match lane {
        Lane::Cpu => Arc::new(ThreadPool::new(
            PoolConfig::fixed("runyard-cpu", threads),
            reg,
            sink,
        )?),
        Lane::Blocking => Arc::new(ThreadPool::new(
            PoolConfig::elastic("runyard-blocking", threads),
            reg,
            sink,
        )?),
        Lane::Async => {
            let rt = match runtime {
                Some(rt) => rt,
                None => runtime.insert(
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(cores())
                        .thread_name("runyard-async")
                        .enable_all()
                        .build()?,
                ),
            };
            Arc::new(AsyncExecutor::new(rt.handle().clone(), reg, sink))
        }
        Lane::Process => {
            let mut pc = engine
                .config
                .process
                .clone()
                .expect("process lane refused at submit without a ProcessConfig");
            pc.workers = threads;
            Arc::new(ProcessPool::new(pc, reg, sink)?)
        }
    })
}
