//! The limits of job input: how many jobs a command may name, and how much
//! of what was given an error echoes.

use std::borrow::Cow;

/// The most jobs one command may name, all its counts together. Every job
/// of a run is held in its queue from the start, so a typo
/// (`noop*4294967295`) is refused before anything starts rather than run
/// out of memory; the largest runs measured (10^7 jobs) fit ten times over.
pub(crate) const MAX_JOBS: u64 = 100_000_000;

/// How much of a message, an argument and a file's line an error shows.
pub(super) const MESSAGE_CHARS: usize = 400;
pub(super) const ARG_CHARS: usize = 80;
pub(super) const LINE_CHARS: usize = 120;

/// `s`, or when it has more than `max` characters its start and end with
/// `…` between.
pub(super) fn clip(s: &str, max: usize) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= max {
        return Cow::Borrowed(s);
    }
    let keep = max.saturating_sub(1) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    Cow::Owned(format!("{head}…{tail}"))
}
