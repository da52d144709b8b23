//! Standard output and standard error, written without panicking.
//!
//! Nothing in this crate prints with `println!` or `eprintln!`, which panic
//! when the stream is closed (`runyard run badtask 2>&1 | true`): lines go
//! through `outln!` and `errln!` (defined in `lib.rs`; the crate's
//! `clippy::print_stdout` lint holds it). A closed standard error is
//! ignored: there is no one left to tell. A closed standard output drops
//! the output and the command goes on (a reader that stops early, `| head`,
//! is not an error, as in ripgrep); any other failure to write it is the
//! runner's ([`RunnerFailure`], exit 3).

use std::fmt;
use std::io::{self, Write as _};

use crate::exit::RunnerFailure;

/// Writes one line to standard output. A reader that has gone (`| head`)
/// is not an error: the line is dropped. Any other failure (a full disk)
/// is.
pub(crate) fn write_stdout(line: fmt::Arguments<'_>) -> Result<(), RunnerFailure> {
    write_all_stdout(format!("{line}\n").as_bytes())
}

/// Writes `bytes` to standard output, as [`write_stdout`] does.
pub(crate) fn write_all_stdout(bytes: &[u8]) -> Result<(), RunnerFailure> {
    let mut out = io::stdout().lock();
    stdout_result(out.write_all(bytes).and_then(|()| out.flush()))
}

/// A write to standard output as this crate judges it: a closed pipe is
/// fine, any other failure is the runner's.
pub(crate) fn stdout_result(r: io::Result<()>) -> Result<(), RunnerFailure> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(RunnerFailure(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// Writes one line to standard error, ignoring a failure: standard error is
/// where a failure would be told.
pub(crate) fn write_stderr(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}
