//! `GET /api/v1/stats?window=1h`: the attempts that ended in each minute
//! of a window, by outcome, which the dashboard's charts draw.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runyard_core::{OutcomeKind, Timestamp};
use runyard_queue::minute_of;
use serde::Serialize;

use crate::api::{blocking, query_pairs, Params};
use crate::error::ApiError;
use crate::AppState;

/// The shortest window, in minutes.
const MIN_MINUTES: u64 = 5;
/// The longest window, in minutes (a day).
const MAX_MINUTES: u64 = 24 * 60;
/// The window when none is given.
const DEFAULT_WINDOW: &str = "1h";

/// One minute of the window: how many attempts ended in it, by outcome.
#[derive(Debug, Serialize)]
struct Minute {
    /// The minute's start (UTC).
    minute: Timestamp,
    succeeded: u64,
    failed: u64,
    panicked: u64,
    crashed: u64,
    timed_out: u64,
    cancelled: u64,
}

impl Minute {
    fn new(minute: Timestamp) -> Minute {
        Minute {
            minute,
            succeeded: 0,
            failed: 0,
            panicked: 0,
            crashed: 0,
            timed_out: 0,
            cancelled: 0,
        }
    }

    fn add(&mut self, o: OutcomeKind, n: u64) {
        let slot = match o {
            OutcomeKind::Succeeded => &mut self.succeeded,
            OutcomeKind::Failed => &mut self.failed,
            OutcomeKind::Panicked => &mut self.panicked,
            OutcomeKind::Crashed => &mut self.crashed,
            OutcomeKind::TimedOut => &mut self.timed_out,
            OutcomeKind::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// The answer: every minute of the window, oldest first (the last one is
/// the current minute, still going on), and the window's totals.
#[derive(Debug, Serialize)]
struct Stats {
    /// The window as asked, e.g. `1h`.
    window: String,
    /// The first minute's start.
    since: Timestamp,
    /// The end of the current minute.
    until: Timestamp,
    /// The queue's clock when it was read.
    now: Timestamp,
    minutes: Vec<Minute>,
    /// The sums over the window, by outcome (`minute` is `since`).
    totals: Minute,
}

/// A window of `5m` to `24h`, in whole minutes or hours: its minutes.
fn parse_window(s: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "`window`: {s:?} is not a window from {MIN_MINUTES}m to 24h: give whole minutes \
             or hours, e.g. 5m, 90m, 1h, 24h"
        ))
    };
    let (n, per) = if let Some(n) = s.strip_suffix('m') {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 60)
    } else {
        return Err(bad());
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let minutes = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .ok_or_else(bad)?;
    if (MIN_MINUTES..=MAX_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(bad())
    }
}

/// `GET /api/v1/stats?window=1h`.
pub(crate) async fn stats(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    let pairs = query_pairs(q, &["window"])?;
    let window = pairs
        .into_iter()
        .next()
        .map_or_else(|| DEFAULT_WINDOW.to_string(), |(_, v)| v);
    let minutes = parse_window(&window)?;
    let (now, since, until, counts) = blocking(&s, move |q| {
        let now = q.now();
        let until = minute_of(now).saturating_add(Duration::from_secs(60));
        let since = until.saturating_sub(Duration::from_secs(60 * minutes));
        let counts = q.inspect()?.finished_per_minute(since, until)?;
        Ok((now, since, until, counts))
    })
    .await?;
    let mut out: Vec<Minute> = (0..minutes)
        .map(|i| Minute::new(since.saturating_add(Duration::from_secs(60 * i))))
        .collect();
    let mut totals = Minute::new(since);
    for c in counts {
        let i = c.minute.since(since).as_secs() / 60;
        if let Some(m) = out.get_mut(i as usize) {
            m.add(c.outcome, c.attempts);
            totals.add(c.outcome, c.attempts);
        }
    }
    Ok(Json(Stats {
        window,
        since,
        until,
        now,
        minutes: out,
        totals,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_minutes_or_hours_from_5m_to_24h() {
        assert_eq!(parse_window("5m").unwrap(), 5);
        assert_eq!(parse_window("90m").unwrap(), 90);
        assert_eq!(parse_window("1h").unwrap(), 60);
        assert_eq!(parse_window("24h").unwrap(), 1440);
        for bad in [
            "",
            "4m",
            "25h",
            "1441m",
            "1d",
            "h",
            "-5m",
            "+5m",
            "1.5h",
            "5 m",
            "99999999999999999999h",
        ] {
            let e = parse_window(bad).unwrap_err();
            assert!(e.message.contains("5m to 24h"), "{bad}: {}", e.message);
        }
    }
}
