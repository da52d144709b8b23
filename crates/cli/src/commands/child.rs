//! `runyard __child`: the role of a child process of `--mode process`,
//! started by this binary's own process pool (hidden from help).

use std::sync::Arc;

use runyard::Registry;

use crate::exit::{error_text, Exit};

/// Runs the child process's role with the tasks of `registry`; its exit
/// code is the process pool's protocol's (2 if the tasks cannot be built).
pub(crate) fn main(registry: anyhow::Result<Arc<Registry>>) -> Exit {
    match registry {
        Ok(r) => Exit::Child(runyard::process::run_child(&r).clamp(0, 255) as u8),
        Err(e) => {
            errln!("runyard worker: {}", error_text(&e));
            Exit::Child(2)
        }
    }
}
