//! The one interrupt handler of every command that runs jobs (`run`,
//! `exec`, `worker`).
//!
//! Ctrl-C and SIGTERM, counted: the first drains (no more jobs start;
//! running attempts may finish within the grace), the second cancels
//! running attempts, the third exits at once (130). Each is said on
//! standard error unless the command is quiet. The handler is installed
//! once per process, when the command's run has started.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::exit::Exit;

/// Interrupts so far, shared with the handler.
#[derive(Debug, Clone)]
pub(crate) struct Interrupts(Arc<AtomicU32>);

impl Interrupts {
    /// Whether there was at least one.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// Installs the handler: `interrupt` is called on each interrupt (the
/// run's interrupter), `who` starts each note and `first` is the note of
/// the first.
pub(crate) fn on_interrupts(
    interrupt: impl Fn() + Send + Sync + 'static,
    who: &'static str,
    first: String,
    quiet: bool,
) -> Interrupts {
    let presses = Arc::new(AtomicU32::new(0));
    let p = Arc::clone(&presses);
    let _ = ctrlc::set_handler(move || {
        let note = match p.fetch_add(1, Ordering::SeqCst) {
            0 => first.clone(),
            1 => "cancelling running attempts; interrupt again to exit at once".to_string(),
            _ => std::process::exit(i32::from(Exit::Interrupted.code())),
        };
        if !quiet {
            errln!("{who}: {note}");
        }
        interrupt();
    });
    Interrupts(presses)
}
