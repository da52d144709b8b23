//! Durations as people write them: `"250ms"`, `"2s"`, `"1m"`, `"1h 30m"`.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// The longest duration runyard takes anywhere (a timeout, a backoff delay,
/// a grace period, a lease, a `sleep`): 100 years, `"100y"`. A longer one
/// is refused where it is read, so that every time computed from one (now
/// plus a delay) is a date that can be written down.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * YEAR_SECS);

/// A year as `"1y"` reads: 365.25 days.
const YEAR_SECS: u64 = 31_557_600;

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration `{input}`: {reason} (expected a number with a unit, e.g. \"250ms\", \"2s\", \"1m\", \"1h\")")]
pub struct DurationError {
    input: String,
    reason: String,
}

impl DurationError {
    /// The text that was given.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Parses a duration such as `"250ms"`, `"2s"`, `"1.5s"`, `"1m"` or `"1h 30m"`,
/// at most [`MAX_DURATION`].
///
/// A bare number without a unit is refused: `"5"` could mean seconds or
/// milliseconds, and guessing wrong is worse than asking.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let d = parse_any_duration(input)?;
    check_duration(d).map_err(|reason| DurationError {
        input: input.to_string(),
        reason,
    })?;
    Ok(d)
}

/// `Err` with the reason when `d` is longer than [`MAX_DURATION`].
pub(crate) fn check_duration(d: Duration) -> Result<(), String> {
    if d > MAX_DURATION {
        return Err("longer than the maximum of 100 years (`100y`)".to_string());
    }
    Ok(())
}

fn parse_any_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = |reason: &str| DurationError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err("missing unit"));
    }
    // Decimal values with one unit ("1.5s", "0.25m"): humantime takes integers only.
    if let Some(d) = parse_decimal(s) {
        return d.ok_or_else(|| err("out of range"));
    }
    humantime::parse_duration(s).map_err(|e| err(&e.to_string()))
}

fn parse_decimal(s: &str) -> Option<Option<Duration>> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    if !num.contains('.') {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        _ => return None,
    };
    Some(Duration::try_from_secs_f64(value * scale).ok())
}

/// Parses a duration that must be greater than zero (timeouts, backoff delays).
pub fn parse_positive_duration(input: &str) -> Result<Duration, DurationError> {
    let d = parse_duration(input)?;
    if d.is_zero() {
        return Err(DurationError {
            input: input.to_string(),
            reason: "must be greater than zero".to_string(),
        });
    }
    Ok(d)
}

/// Formats a duration in the shortest form [`parse_duration`] reads back:
/// `250ms`, `2s`, `1m30s`, `1h`.
pub fn format_duration(d: Duration) -> String {
    DurationDisplay(d).to_string()
}

/// Displays a duration compactly for humans: `850µs`, `12.3ms`, `1.25s`, `2m05s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{}µs", d.as_micros())
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.2}s")
    } else {
        let m = d.as_secs() / 60;
        format!("{m}m{:02}s", d.as_secs() % 60)
    }
}

struct DurationDisplay(Duration);

impl fmt::Display for DurationDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_nanos() != 0 {
            if d.subsec_nanos() % 1_000_000 == 0 {
                return write!(f, "{}ms", d.as_millis());
            }
            if d.subsec_nanos() % 1_000 == 0 {
                return write!(f, "{}us", d.as_micros());
            }
            return write!(f, "{}ns", d.as_nanos());
        }
        let mut secs = d.as_secs();
        let h = secs / 3600;
        secs %= 3600;
        let m = secs / 60;
        secs %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

/// Serde helpers for durations written as strings (`"250ms"`).
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a duration string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::format_duration(*d))
    }

    /// Deserializes from a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `None` as null.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(&super::super::format_duration(*d)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes null as `None`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
            s.map(|s| super::super::parse_duration(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a rejection says: the spec, a reason, and the valid forms.
    fn says_what_was_wrong(input: &str, e: &DurationError) -> Result<(), TestCaseError> {
        prop_assert_eq!(e.input(), input);
        prop_assert!(!e.reason.trim().is_empty(), "{:?}", e);
        let text = e.to_string();
        let head = format!("invalid duration `{input}`: {}", e.reason);
        prop_assert!(text.starts_with(&head), "{}", text);
        prop_assert!(text.contains("expected a number with a unit"), "{}", text);
        Ok(())
    }

    /// Near misses and hits: numbers of any size, with and without a
    /// fraction, with units that are read and units that are not.
    fn spec_like() -> impl Strategy<Value = String> {
        let unit = proptest::sample::select(vec![
            "", "ns", "us", "µs", "ms", "s", "sec", "m", "min", "h", "hrs", "d", "w", "y", "years",
            "parsecs", "S",
        ]);
        (
            "[0-9]{0,22}",
            proptest::option::of("[0-9]{0,12}"),
            any::<bool>(),
            unit,
            proptest::option::of("[0-9]{1,4}(ms|s|m)"),
        )
            .prop_map(|(int, frac, space, unit, more)| {
                let mut s = int;
                if let Some(f) = frac {
                    s.push('.');
                    s.push_str(&f);
                }
                if space {
                    s.push(' ');
                }
                s.push_str(unit);
                if let Some(m) = more {
                    s.push(' ');
                    s.push_str(&m);
                }
                s
            })
    }

    proptest! {
        // Parsing is cheap: many cases, so the rarer near misses come up.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the input: no panic; a rejection says what was wrong;
        /// an accepted duration is within the maximum and reads back from
        /// its display form.
        #[test]
        fn any_input_is_read_or_refused_with_a_reason(
            input in prop_oneof![spec_like(), any::<String>()]
        ) {
            match parse_duration(&input) {
                Ok(d) => {
                    prop_assert!(d <= MAX_DURATION);
                    let shown = format_duration(d);
                    prop_assert_eq!(parse_duration(&shown), Ok(d), "{} shown as {}", input, shown);
                }
                Err(e) => says_what_was_wrong(&input, &e)?,
            }
            if let Err(e) = parse_positive_duration(&input) {
                says_what_was_wrong(&input, &e)?;
            }
        }

        /// Every duration up to the maximum is displayed in a form that
        /// reads back exactly.
        #[test]
        fn every_duration_within_the_maximum_reads_back(nanos in 0..=MAX_DURATION.as_nanos() as u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(" 10us ").unwrap(), Duration::from_micros(10));
    }

    #[test]
    fn refuses_numbers_without_units_and_garbage() {
        for bad in ["", "5", "1.5", "abc", "10 parsecs", "-1s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(
                e.to_string().contains("expected a number with a unit"),
                "{e}"
            );
            assert_eq!(e.input(), bad);
        }
        assert!(parse_positive_duration("0s")
            .unwrap_err()
            .to_string()
            .contains("greater than zero"));
    }

    #[test]
    fn refuses_durations_beyond_the_maximum_naming_both() {
        assert_eq!(parse_duration("100y").unwrap(), MAX_DURATION);
        for long in [
            "8000y",
            "101y",
            "36526d",
            "1000000000000000s",
            "99999999999.5h",
        ] {
            let e = parse_duration(long).unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{long}`")) && e.contains("maximum of 100 years"),
                "{e}"
            );
        }
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn format_reads_back() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(2),
            Duration::from_secs(90),
            Duration::from_secs(3600),
            Duration::from_micros(15),
            Duration::from_nanos(7),
        ] {
            assert_eq!(
                parse_duration(&format_duration(d)).unwrap(),
                d,
                "{}",
                format_duration(d)
            );
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
