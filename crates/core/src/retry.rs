//! Retry policies: how many attempts a job gets and how long to wait between them.
//!
//! One concept, with its property tests: the retry policy and its backoff.
//!
//! A [`RetryPolicy`] is plain data. The worker asks it, after every attempt
//! that did not succeed, what comes next ([`RetryPolicy::decide`]); the answer
//! depends only on the attempt number, the error's intent and one random
//! number, so it can be tested exhaustively.
//!
//! A task may ask for its own delay ([`ErrorIntent::RetryAfter`], e.g. an
//! HTTP server's `Retry-After`); the policy honours it up to
//! [`Backoff::retry_after_cap`], so a server cannot push a retry past what
//! the job allows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::duration::{check_duration, format_duration, parse_positive_duration};
use crate::error::ErrorIntent;

/// The longest a task's own retry delay ([`ErrorIntent::RetryAfter`]) is
/// honoured when the backoff has no cap of its own (`none`, or a shorter
/// `fixed` delay): one hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// Always wait the same time.
    Fixed(Duration),
    /// Wait `base × factor^(n-1)` after the n-th failed attempt, at most `cap`,
    /// randomized by `jitter`.
    Exponential {
        /// The delay after the first failed attempt (before jitter).
        base: Duration,
        /// Growth per attempt, at least 1.
        factor: f64,
        /// The largest delay (before jitter).
        cap: Duration,
        /// How the delay is randomized.
        jitter: Jitter,
    },
}

/// How an exponential delay `d` is randomized, so that jobs that failed
/// together do not all retry at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]` (spreads retries the most).
    Full,
    /// Uniform in `[d/2, d]`.
    Equal,
}

impl Backoff {
    /// The default exponential backoff: base 100ms, factor 2, cap 1m, full jitter.
    pub const DEFAULT_EXPONENTIAL: Backoff = Backoff::Exponential {
        base: Duration::from_millis(100),
        factor: 2.0,
        cap: Duration::from_secs(60),
        jitter: Jitter::Full,
    };

    /// The delay after the `failed_attempt`-th attempt failed (1-based), with
    /// `random` uniform in `[0, 1)` supplying the jitter.
    pub fn delay(&self, failed_attempt: u32, random: f64) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential {
                base,
                factor,
                cap,
                jitter,
            } => {
                let exp = failed_attempt.saturating_sub(1).min(1024) as i32;
                let raw = base.as_secs_f64() * factor.powi(exp);
                let d = if raw.is_finite() {
                    raw.min(cap.as_secs_f64())
                } else {
                    cap.as_secs_f64()
                };
                // NaN (from a NaN random) clamps to 0.
                let r = random.clamp(0.0, 1.0);
                let r = if r.is_nan() { 0.0 } else { r };
                let secs = match jitter {
                    Jitter::None => d,
                    Jitter::Full => d * r,
                    Jitter::Equal => d / 2.0 + d / 2.0 * r,
                };
                Duration::try_from_secs_f64(secs).map_or(cap, |d| d.min(cap))
            }
        }
    }

    /// The largest delay this backoff can produce after the `failed_attempt`-th attempt.
    pub fn max_delay(&self, failed_attempt: u32) -> Duration {
        match *self {
            Backoff::Exponential { .. } => {
                let mut no_jitter = *self;
                if let Backoff::Exponential { jitter, .. } = &mut no_jitter {
                    *jitter = Jitter::None;
                }
                no_jitter.delay(failed_attempt, 1.0)
            }
            other => other.delay(failed_attempt, 1.0),
        }
    }

    /// The longest delay a task's own retry-after is honoured for: an
    /// exponential backoff's cap; otherwise [`MAX_RETRY_AFTER`], or the
    /// fixed delay when that is longer.
    pub fn retry_after_cap(&self) -> Duration {
        match *self {
            Backoff::None => MAX_RETRY_AFTER,
            Backoff::Fixed(d) => d.max(MAX_RETRY_AFTER),
            Backoff::Exponential { cap, .. } => cap,
        }
    }

    fn check(&self) -> Result<(), BackoffError> {
        let longest = match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { base, cap, .. } => base.max(cap),
        };
        check_duration(longest).map_err(|reason| BackoffError::new(self.to_string(), reason))?;
        if let Backoff::Exponential {
            base, factor, cap, ..
        } = *self
        {
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(BackoffError::new(
                    self.to_string(),
                    "factor must be a number >= 1",
                ));
            }
            if cap < base {
                return Err(BackoffError::new(
                    self.to_string(),
                    "cap must be at least the base delay",
                ));
            }
        }
        Ok(())
    }
}

/// A backoff specification that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid backoff `{spec}`: {reason}; expected `none`, `fixed:DELAY` or `exponential[:BASE][,cap=DELAY][,factor=N][,jitter=full|equal|none]`, e.g. `exponential:200ms,cap=30s`")]
pub struct BackoffError {
    spec: String,
    reason: String,
}

impl BackoffError {
    fn new(spec: impl Into<String>, reason: impl Into<String>) -> BackoffError {
        BackoffError {
            spec: spec.into(),
            reason: reason.into(),
        }
    }
}

impl FromStr for Backoff {
    type Err = BackoffError;

    /// Reads `none`, `fixed:2s`, `exponential`, `exponential:200ms`,
    /// `exponential:200ms,cap=30s,factor=3,jitter=equal` (`exp` for short).
    fn from_str(spec: &str) -> Result<Backoff, BackoffError> {
        let s = spec.trim();
        let (head, opts) = match s.split_once(',') {
            Some((h, o)) => (h.trim(), Some(o)),
            None => (s, None),
        };
        let (kind, arg) = match head.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (head, None),
        };
        let dur = |text: &str| {
            parse_positive_duration(text).map_err(|e| BackoffError::new(spec, e.to_string()))
        };
        let backoff = match kind {
            "none" => {
                if arg.is_some() || opts.is_some() {
                    return Err(BackoffError::new(spec, "`none` takes no arguments"));
                }
                Backoff::None
            }
            "fixed" => {
                if opts.is_some() {
                    return Err(BackoffError::new(spec, "`fixed` takes only a delay"));
                }
                Backoff::Fixed(match arg {
                    Some(a) => dur(a)?,
                    None => Duration::from_secs(1),
                })
            }
            "exponential" | "exp" => {
                let Backoff::Exponential {
                    mut base,
                    mut factor,
                    mut cap,
                    mut jitter,
                } = Backoff::DEFAULT_EXPONENTIAL
                else {
                    unreachable!()
                };
                if let Some(a) = arg {
                    base = dur(a)?;
                }
                let mut cap_given = false;
                for opt in opts.into_iter().flat_map(|o| o.split(',')) {
                    let (k, v) = opt
                        .split_once('=')
                        .map(|(k, v)| (k.trim(), v.trim()))
                        .ok_or_else(|| {
                            BackoffError::new(
                                spec,
                                format!("option `{}` is not KEY=VALUE", opt.trim()),
                            )
                        })?;
                    match k {
                        "cap" | "max" => {
                            cap = dur(v)?;
                            cap_given = true;
                        }
                        "factor" => {
                            factor = v.parse().map_err(|_| {
                                BackoffError::new(spec, format!("factor `{v}` is not a number"))
                            })?
                        }
                        "jitter" => {
                            jitter = match v {
                                "full" => Jitter::Full,
                                "equal" => Jitter::Equal,
                                "none" => Jitter::None,
                                other => {
                                    return Err(BackoffError::new(
                                        spec,
                                        format!("unknown jitter `{other}` (full, equal or none)"),
                                    ))
                                }
                            }
                        }
                        other => {
                            return Err(BackoffError::new(
                                spec,
                                format!("unknown option `{other}` (cap, factor or jitter)"),
                            ))
                        }
                    }
                }
                if !cap_given && cap < base {
                    cap = base;
                }
                Backoff::Exponential {
                    base,
                    factor,
                    cap,
                    jitter,
                }
            }
            "" => return Err(BackoffError::new(spec, "empty")),
            other => return Err(BackoffError::new(spec, format!("unknown kind `{other}`"))),
        };
        // Named as it was written, not as it reads back.
        backoff
            .check()
            .map_err(|e| BackoffError::new(spec, e.reason))?;
        Ok(backoff)
    }
}

impl fmt::Display for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Backoff::None => f.write_str("none"),
            Backoff::Fixed(d) => write!(f, "fixed:{}", format_duration(d)),
            Backoff::Exponential {
                base,
                factor,
                cap,
                jitter,
            } => {
                write!(
                    f,
                    "exponential:{},cap={}",
                    format_duration(base),
                    format_duration(cap)
                )?;
                if factor != 2.0 {
                    write!(f, ",factor={factor}")?;
                }
                match jitter {
                    Jitter::Full => Ok(()),
                    Jitter::Equal => f.write_str(",jitter=equal"),
                    Jitter::None => f.write_str(",jitter=none"),
                }
            }
        }
    }
}

impl Serialize for Backoff {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Backoff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Backoff, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How many attempts a job gets and how long it waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1 (1 = never retried).
    pub max_attempts: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::DEFAULT`].
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

/// What follows an attempt that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run another attempt after this delay.
    Retry(Duration),
    /// The job is dead.
    GiveUp(GiveUpReason),
}

/// Why a job gets no further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The error was permanent.
    Permanent,
    /// `max_attempts` attempts have run.
    Exhausted,
}

impl RetryPolicy {
    /// The default: three attempts with [`Backoff::DEFAULT_EXPONENTIAL`].
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        backoff: Backoff::DEFAULT_EXPONENTIAL,
    };

    /// A policy that never retries.
    pub const NEVER: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        backoff: Backoff::None,
    };

    /// A policy of `max_attempts` attempts with the given backoff.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Result<RetryPolicy, PolicyError> {
        let p = RetryPolicy {
            max_attempts,
            backoff,
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks `max_attempts >= 1` and the backoff's own bounds.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::MaxAttempts(self.max_attempts));
        }
        self.backoff.check().map_err(PolicyError::Backoff)
    }

    /// Decides what follows attempt number `attempt` (1-based), which ended
    /// with an error of the given intent; `random` is uniform in `[0, 1)`.
    pub fn decide(&self, attempt: u32, intent: ErrorIntent, random: f64) -> RetryDecision {
        if intent == ErrorIntent::Permanent {
            return RetryDecision::GiveUp(GiveUpReason::Permanent);
        }
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::Exhausted);
        }
        match intent {
            ErrorIntent::RetryAfter(d) => {
                RetryDecision::Retry(d.min(self.backoff.retry_after_cap()))
            }
            _ => RetryDecision::Retry(self.backoff.delay(attempt, random)),
        }
    }
}

/// An invalid retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// `max_attempts` was below 1.
    #[error("max_attempts must be >= 1, got {0}")]
    MaxAttempts(u32),
    /// The backoff was invalid.
    #[error(transparent)]
    Backoff(BackoffError),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_specs_and_round_trips_them() {
        assert_eq!("none".parse::<Backoff>().unwrap(), Backoff::None);
        assert_eq!(
            "fixed:2s".parse::<Backoff>().unwrap(),
            Backoff::Fixed(Duration::from_secs(2))
        );
        let e: Backoff = "exponential:200ms,cap=30s,factor=3,jitter=equal"
            .parse()
            .unwrap();
        assert_eq!(
            e,
            Backoff::Exponential {
                base: Duration::from_millis(200),
                factor: 3.0,
                cap: Duration::from_secs(30),
                jitter: Jitter::Equal
            }
        );
        for spec in [
            "none",
            "fixed:250ms",
            "exponential:200ms,cap=30s,factor=3,jitter=equal",
            "exp",
            "exponential:5m",
        ] {
            let b: Backoff = spec.parse().unwrap();
            assert_eq!(b.to_string().parse::<Backoff>().unwrap(), b, "{spec}");
        }
    }

    #[test]
    fn rejects_bad_specs_with_the_valid_forms() {
        for (spec, why) in [
            ("linear", "unknown kind `linear`"),
            ("fixed:0s", "greater than zero"),
            ("fixed:soon", "invalid duration"),
            ("exponential:1s,cap=10ms", "cap must be at least"),
            ("exponential,factor=0.5", "factor must be"),
            ("exponential,jitter=some", "unknown jitter"),
            ("exponential,ceiling=1s", "unknown option `ceiling`"),
            ("none:1s", "takes no arguments"),
            ("", "empty"),
        ] {
            let e = spec.parse::<Backoff>().unwrap_err().to_string();
            assert!(e.contains(why), "{spec}: {e}");
            assert!(e.contains("expected `none`, `fixed:DELAY`"), "{e}");
        }
    }

    #[test]
    fn delays_beyond_the_maximum_are_refused_naming_the_spec() {
        for spec in ["fixed:8000y", "exponential:1s,cap=200y", "exp:101y"] {
            let e = spec.parse::<Backoff>().unwrap_err().to_string();
            assert!(e.contains("maximum of 100 years"), "{spec}: {e}");
        }
        let huge = Backoff::Fixed(Duration::MAX);
        assert!(
            RetryPolicy::new(2, huge).is_err(),
            "checked when built in code too"
        );
        assert!("fixed:100y".parse::<Backoff>().is_ok());
    }

    /// A task's own retry-after (an HTTP server's `Retry-After`) is
    /// honoured up to the backoff's cap, or an hour without one.
    #[test]
    fn a_retry_after_is_capped_by_the_backoff() {
        let far = ErrorIntent::RetryAfter(Duration::from_secs(999_999_999_999));
        let p = |b: &str| RetryPolicy::new(3, b.parse().unwrap()).unwrap();
        let delay = |b: &str, intent| match p(b).decide(1, intent, 0.5) {
            RetryDecision::Retry(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            delay("exponential:1s,cap=30s", far),
            Duration::from_secs(30)
        );
        assert_eq!(delay("none", far), MAX_RETRY_AFTER);
        assert_eq!(delay("fixed:2s", far), MAX_RETRY_AFTER);
        assert_eq!(delay("fixed:3h", far), Duration::from_secs(3 * 3600));
        let soon = ErrorIntent::RetryAfter(Duration::from_secs(5));
        assert_eq!(
            delay("exponential:1s,cap=30s", soon),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn max_attempts_zero_is_refused() {
        assert_eq!(
            RetryPolicy::new(0, Backoff::None),
            Err(PolicyError::MaxAttempts(0))
        );
    }

    fn backoffs() -> impl Strategy<Value = Backoff> {
        prop_oneof![
            Just(Backoff::None),
            (1u64..10_000).prop_map(|ms| Backoff::Fixed(Duration::from_millis(ms))),
            (1u64..5_000, 1.0f64..4.0, 0u64..100_000, 0..3u8).prop_map(
                |(base, factor, extra, j)| {
                    Backoff::Exponential {
                        base: Duration::from_millis(base),
                        factor,
                        cap: Duration::from_millis(base + extra),
                        jitter: [Jitter::None, Jitter::Full, Jitter::Equal][j as usize],
                    }
                }
            ),
        ]
    }

    fn intents() -> impl Strategy<Value = ErrorIntent> {
        prop_oneof![
            Just(ErrorIntent::Retryable),
            Just(ErrorIntent::Permanent),
            (0u64..100_000).prop_map(|ms| ErrorIntent::RetryAfter(Duration::from_millis(ms))),
        ]
    }

    /// Specs near the grammar: each part from what is read and what is not.
    fn spec_like() -> impl Strategy<Value = String> {
        let kind = proptest::sample::select(vec![
            "none",
            "fixed",
            "exp",
            "exponential",
            "linear",
            "",
            "Fixed",
        ]);
        let delay = proptest::sample::select(vec![
            "250ms", "1s", "0s", "1.5s", "5m", "100y", "101y", "8000y", "soon", "5", "",
        ]);
        let opt = (
            proptest::sample::select(vec!["cap", "max", "factor", "jitter", "ceiling", ""]),
            proptest::sample::select(vec![
                "10ms", "30s", "1h", "200y", "0.5", "1", "3", "1e308", "inf", "NaN", "full",
                "equal", "none", "some", "",
            ]),
            any::<bool>(),
        )
            .prop_map(|(k, v, eq)| {
                if eq {
                    format!("{k}={v}")
                } else {
                    format!("{k}{v}")
                }
            });
        (
            kind,
            proptest::option::of(delay),
            proptest::collection::vec(opt, 0..4),
        )
            .prop_map(|(kind, delay, opts)| {
                let mut s = kind.to_string();
                if let Some(d) = delay {
                    s.push(':');
                    s.push_str(d);
                }
                for o in opts {
                    s.push(',');
                    s.push_str(&o);
                }
                s
            })
    }

    proptest! {
        // Parsing is cheap: many cases, so the rarer near misses come up.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the spec: no panic; a rejection names the spec, says
        /// what was wrong and shows the valid forms; an accepted backoff
        /// reads back from its display form and stays within the bounds.
        #[test]
        fn any_spec_is_read_or_refused_with_a_reason(
            spec in prop_oneof![spec_like(), any::<String>()]
        ) {
            match spec.parse::<Backoff>() {
                Ok(b) => {
                    let shown = b.to_string();
                    prop_assert_eq!(shown.parse::<Backoff>(), Ok(b), "{} shown as {}", spec, shown);
                    prop_assert!(b.check().is_ok());
                    prop_assert!(b.retry_after_cap() <= crate::duration::MAX_DURATION.max(MAX_RETRY_AFTER));
                    for attempt in [1, 2, 30, u32::MAX] {
                        prop_assert!(b.delay(attempt, 0.999) <= b.max_delay(attempt));
                    }
                }
                Err(e) => {
                    prop_assert_eq!(&e.spec, &spec);
                    prop_assert!(!e.reason.trim().is_empty(), "{:?}", e);
                    let text = e.to_string();
                    prop_assert!(text.starts_with(&format!("invalid backoff `{}`: {}", spec, e.reason)), "{}", text);
                    prop_assert!(text.contains("expected `none`, `fixed:DELAY`"), "{}", text);
                }
            }
        }

        #[test]
        fn delays_stay_within_their_bounds(b in backoffs(), attempt in 1u32..200, r in 0.0f64..1.0) {
            let d = b.delay(attempt, r);
            match b {
                Backoff::None => prop_assert_eq!(d, Duration::ZERO),
                Backoff::Fixed(f) => prop_assert_eq!(d, f),
                Backoff::Exponential { base, factor, cap, jitter } => {
                    prop_assert!(d <= cap);
                    let ideal = (base.as_secs_f64() * factor.powi(attempt as i32 - 1)).min(cap.as_secs_f64());
                    let tol = 1e-6;
                    match jitter {
                        Jitter::None => prop_assert!((d.as_secs_f64() - ideal).abs() <= tol),
                        Jitter::Full => prop_assert!(d.as_secs_f64() <= ideal + tol),
                        Jitter::Equal => prop_assert!(d.as_secs_f64() >= ideal / 2.0 - tol && d.as_secs_f64() <= ideal + tol),
                    }
                    prop_assert!(d <= b.max_delay(attempt));
                }
            }
        }

        #[test]
        fn never_more_than_max_attempts_and_permanent_never_retried(
            max in 1u32..20, b in backoffs(), intents in proptest::collection::vec(intents(), 1..40), r in 0.0f64..1.0
        ) {
            let p = RetryPolicy::new(max, b).unwrap();
            let mut attempts = 0u32;
            for intent in intents {
                attempts += 1;
                match p.decide(attempts, intent, r) {
                    RetryDecision::Retry(d) => {
                        prop_assert!(attempts < max, "retry after attempt {} of {}", attempts, max);
                        prop_assert!(intent != ErrorIntent::Permanent);
                        if let ErrorIntent::RetryAfter(after) = intent {
                            prop_assert_eq!(d, after.min(b.retry_after_cap()));
                        }
                    }
                    RetryDecision::GiveUp(GiveUpReason::Permanent) => {
                        prop_assert_eq!(intent, ErrorIntent::Permanent);
                        break;
                    }
                    RetryDecision::GiveUp(GiveUpReason::Exhausted) => {
                        prop_assert_eq!(attempts, max);
                        break;
                    }
                }
            }
            prop_assert!(attempts <= max);
        }
    }
}
