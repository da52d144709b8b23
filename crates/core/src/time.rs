//! Wall-clock timestamps with microsecond resolution.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in wall-clock time: microseconds since the Unix epoch (UTC),
/// from [`Timestamp::EPOCH`] to [`Timestamp::MAX`], the last microsecond of
/// the year 9999.
///
/// Serialized as an RFC 3339 string with millisecond precision, e.g.
/// `"2026-11-25T10:04:05.123Z"`; [`Timestamp::from_micros`] and
/// [`Timestamp::as_micros`] give the integer form that queues store. Every
/// way to make one stays within that range (arithmetic saturates at its
/// ends), so every timestamp can be written.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch, the earliest timestamp.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// `9999-12-31T23:59:59.999999Z`, the latest timestamp (RFC 3339 has
    /// four digits for the year).
    pub const MAX: Timestamp = Timestamp(253_402_300_800_000_000 - 1);

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// From microseconds since the Unix epoch, brought within
    /// [`Timestamp::EPOCH`]..=[`Timestamp::MAX`].
    pub const fn from_micros(micros: i64) -> Timestamp {
        if micros < Timestamp::EPOCH.0 {
            Timestamp::EPOCH
        } else if micros > Timestamp::MAX.0 {
            Timestamp::MAX
        } else {
            Timestamp(micros)
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp::from_micros(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// `self - d`, saturating at [`Timestamp::EPOCH`].
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp::from_micros(
            self.0
                .saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0.max(0) as u64)
    }

    /// Parses an RFC 3339 timestamp such as `2026-11-25T10:04:05Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, humantime::TimestampError> {
        humantime::parse_rfc3339_weak(s).map(Timestamp::from)
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating.
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating.
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

impl From<SystemTime> for Timestamp {
    /// Saturating: a time before the epoch is the epoch.
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(_) => Timestamp::EPOCH,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_millis(self.to_system_time())
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let t = Timestamp::from_micros(1_764_064_445_123_000);
        let s = t.to_string();
        assert_eq!(s, "2025-11-25T09:54:05.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&s).unwrap(), t);
    }

    #[test]
    fn arithmetic_saturates_and_since_is_never_negative() {
        let t = Timestamp::from_micros(10);
        assert_eq!((t + Duration::from_micros(5)).as_micros(), 15);
        assert_eq!(t.since(Timestamp::from_micros(20)), Duration::ZERO);
        assert_eq!(
            Timestamp::from_micros(i64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp::MAX
        );
        assert_eq!(t - Duration::from_secs(1), Timestamp::EPOCH);
        assert_eq!(Timestamp::from_micros(-5), Timestamp::EPOCH);
    }

    /// However far a time is pushed, it is written: a JSON event with a
    /// `run_at` 8000 years ahead once stopped the run mid-line.
    #[test]
    fn every_timestamp_can_be_written() {
        let now = Timestamp::now();
        let far = now + Duration::from_secs(8000 * 31_557_600);
        assert_eq!(far, Timestamp::MAX);
        for t in [
            far,
            now + Duration::MAX,
            Timestamp::from_micros(i64::MAX),
            Timestamp::from_micros(i64::MIN),
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)),
        ] {
            let json = serde_json::to_string(&t).unwrap();
            let back: Timestamp = serde_json::from_str(&json).unwrap();
            assert!(t.as_micros() - back.as_micros() < 1000, "{json}");
        }
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
    }
}
