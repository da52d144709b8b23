//! Turning a task's panic into an attempt outcome.
//!
//! The hook installed by [`install_panic_hook`] stays silent for panics
//! inside attempts (they are reported as `panicked` outcomes, with their
//! message and location) and defers to the previous hook for every other
//! panic, so an engine bug is still loud.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IN_ATTEMPT: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook (once per process; later calls do nothing).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_ATTEMPT.with(Cell::get) {
                let msg = payload_message(info.payload());
                let msg = match info.location() {
                    Some(l) => format!("{msg} (at {}:{}:{})", l.file(), l.line(), l.column()),
                    None => msg,
                };
                LAST.with(|l| *l.borrow_mut() = Some(msg));
            } else {
                previous(info);
            }
        }));
    });
}

/// The message of a panic payload.
pub(crate) fn payload_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into `Err(message)`.
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = IN_ATTEMPT.with(|c| c.replace(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    IN_ATTEMPT.with(|c| c.set(was));
    r.map_err(|payload| {
        let msg = LAST
            .with(|l| l.borrow_mut().take())
            .unwrap_or_else(|| payload_message(&*payload));
        // A payload whose destructor panics must not take the thread down.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        msg
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_messages_with_their_location() {
        install_panic_hook();
        let e = catch_panic(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(e.starts_with("boom 7 (at "), "{e}");
        assert!(e.contains("panic.rs"), "{e}");
        assert_eq!(catch_panic(|| 5).unwrap(), 5);
    }
}
