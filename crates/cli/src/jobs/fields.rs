//! The fields of a job file that serde's own types would read with a Rust
//! type's words ("expected u32", "as i128", "invalid type: map"): whole
//! numbers with their range, `run_at` as a TOML date-time or a string, and
//! `params` with integers JSON cannot hold refused in words, `run_if` and
//! the entries of `after` (a name or an id).

use std::fmt;
use std::time::Duration;

use runyard::workflow::RunIf;
use runyard::{Mode, Timestamp};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::Value;
use toml::value::{Datetime, Offset};

use super::limits::{clip, ARG_CHARS, MAX_JOBS};

/// Reads a whole number from `min` to `max`, and says so when it is not
/// one (serde's own message names a Rust type: "expected u32").
struct WholeVisitor {
    min: i64,
    max: i64,
    /// What the bounds are, after them.
    why: &'static str,
}

impl Visitor<'_> for WholeVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number from {} to {}{}",
            self.min, self.max, self.why
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(E::invalid_value(Unexpected::Signed(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<i64, E> {
        Err(E::invalid_value(
            Unexpected::Other(&format!("integer `{v}`")),
            &self,
        ))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<i64, E> {
        Err(E::invalid_value(
            Unexpected::Other(&format!("integer `{v}`")),
            &self,
        ))
    }
}

/// A job's `params` table, read into JSON. An integer JSON cannot hold
/// (past 64 bits) is refused in words (serde_json says "JSON number out of
/// range", TOML's own values "as i128").
#[derive(Debug)]
pub(super) struct ParamTable(pub(super) serde_json::Map<String, Value>);

/// One value of a `params` table.
struct ParamValue(Value);

impl<'de> Deserialize<'de> for ParamTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ParamTable, D::Error> {
        match ParamValue::deserialize(d)?.0 {
            Value::Object(m) => Ok(ParamTable(m)),
            other => Err(de::Error::custom(format!(
                "params must be a table of name = value, got {}",
                clip(&other.to_string(), ARG_CHARS)
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ParamValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a parameter value")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue(v.into()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue(v.into()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                Ok(ParamValue(v.into()))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<ParamValue, E> {
                Err(too_large(v))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<ParamValue, E> {
                Err(too_large(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamValue, E> {
                serde_json::Number::from_f64(v)
                    .map(|n| ParamValue(Value::Number(n)))
                    .ok_or_else(|| E::custom(format!("{v} is not a number a parameter can be")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue(v.into()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue(v.into()))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ParamValue, A::Error> {
                let mut out = Vec::new();
                while let Some(ParamValue(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(ParamValue(Value::Array(out)))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ParamValue, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((k, ParamValue(v))) = map.next_entry::<String, ParamValue>()? {
                    out.insert(k, v);
                }
                Ok(ParamValue(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

fn too_large<E: de::Error>(v: impl fmt::Display) -> E {
    E::custom(format!(
        "the integer {} is too large: parameters hold whole numbers from {} to {}",
        clip(&v.to_string(), ARG_CHARS),
        i64::MIN,
        u64::MAX
    ))
}

/// A whole-number field of a job file, `$name($ty)`, read by
/// [`WholeVisitor`] from `$min` to `$max`.
macro_rules! whole_number {
    ($(#[$doc:meta])* $name:ident($ty:ty) from $min:expr, to $max:expr, $why:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub(super) struct $name(pub(super) $ty);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let why = $why;
                let n = d.deserialize_any(WholeVisitor { min: $min, max: $max, why })?;
                // The visitor kept it within the type's range.
                Ok($name(n as $ty))
            }
        }
    };
}

whole_number!(
    /// `count`: 1 to [`MAX_JOBS`].
    Count(u32) from 1, to MAX_JOBS as i64, " (the most jobs one command may run)"
);
whole_number!(
    /// `max_attempts`: 1 or more.
    Attempts(u32) from 1, to i64::from(u32::MAX), ""
);
whole_number!(
    /// `priority`: a 32-bit whole number.
    Priority(i32) from i64::from(i32::MIN), to i64::from(i32::MAX), ""
);

/// `mode`: one of the modes' names. (`Mode`'s own reading says only
/// "wanted string or table" of a value of another type.)
#[derive(Debug, Clone, Copy)]
pub(super) struct FileMode(pub(super) Mode);

/// The names [`FileMode`] takes: those of [`Mode::ALL`] (a test holds it).
pub(super) const MODE_NAMES: [&str; 4] = ["auto", "thread", "process", "async"];

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileMode, D::Error> {
        struct ModeVisitor;
        impl Visitor<'_> for ModeVisitor {
            type Value = FileMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a mode: one of `{}`", MODE_NAMES.join("`, `"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                Mode::ALL
                    .into_iter()
                    .find(|m| m.as_str() == v)
                    .map(FileMode)
                    .ok_or_else(|| E::unknown_variant(v, &MODE_NAMES))
            }
        }
        d.deserialize_any(ModeVisitor)
    }
}

/// `run_at`: a TOML date-time (`run_at = 2026-11-25T10:00:00Z`) or the
/// same in a string, with `Z` or an offset.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunAt(Datetime);

const RUN_AT_FORM: &str =
    "a date and time with Z or an offset, e.g. 2026-11-25T10:00:00Z or 2026-11-25T11:00:00+01:00";

impl<'de> Deserialize<'de> for RunAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RunAt, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RunAt;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RUN_AT_FORM)
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<RunAt, E> {
                s.trim()
                    .parse()
                    .map(RunAt)
                    .map_err(|_| E::invalid_value(Unexpected::Str(&clip(s, ARG_CHARS)), &self))
            }

            // How the TOML deserializer hands over a date-time.
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RunAt, A::Error> {
                Datetime::deserialize(de::value::MapAccessDeserializer::new(map)).map(RunAt)
            }
        }
        d.deserialize_any(V)
    }
}

impl RunAt {
    /// The instant: a date, a time and an offset are all needed.
    pub(super) fn timestamp(&self) -> Result<Timestamp, String> {
        let dt = &self.0;
        let (Some(date), Some(time)) = (dt.date, dt.time) else {
            return Err(format!("`{dt}` is not {RUN_AT_FORM}"));
        };
        let Some(offset) = dt.offset else {
            return Err(format!(
                "`{dt}` has no time zone: add Z for UTC or an offset such as +01:00"
            ));
        };
        let utc = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            date.year,
            date.month,
            date.day,
            time.hour,
            time.minute,
            time.second.unwrap_or(0),
            time.nanosecond.unwrap_or(0)
        );
        let t = Timestamp::parse_rfc3339(&utc).map_err(|e| format!("`{dt}`: {e}"))?;
        Ok(match offset {
            Offset::Z => t,
            Offset::Custom { minutes } => {
                let by = Duration::from_secs(u64::from(minutes.unsigned_abs()) * 60);
                if minutes >= 0 {
                    t - by
                } else {
                    t + by
                }
            }
        })
    }
}

/// `run_if`: `"success"` or `"always"`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileRunIf(pub(super) RunIf);

impl<'de> Deserialize<'de> for FileRunIf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileRunIf, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileRunIf;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"success\" (run once every job it is after has succeeded) or \"always\" (once they have all ended)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileRunIf, E> {
                v.parse::<RunIf>().map(FileRunIf).map_err(|_| {
                    E::custom(format!(
                        "unknown run_if `{}`: expected \"success\" (run once every job it is \
                         after has succeeded, the default) or \"always\" (once they have all \
                         ended, whatever their outcome)",
                        clip(v, ARG_CHARS)
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of `after`: a job's name, or the id of a job in the queue.
#[derive(Debug, Clone)]
pub(super) enum AfterEntry {
    Name(String),
    Id(u64),
}

impl<'de> Deserialize<'de> for AfterEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AfterEntry, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AfterEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "the name of a job of this command (a string) or the id of a job in the \
                     queue (a whole number from 1)",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AfterEntry, E> {
                Ok(AfterEntry::Name(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AfterEntry, E> {
                match u64::try_from(v) {
                    Ok(id) if id > 0 => Ok(AfterEntry::Id(id)),
                    _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AfterEntry, E> {
                if v == 0 {
                    return Err(E::invalid_value(Unexpected::Unsigned(v), &self));
                }
                Ok(AfterEntry::Id(v))
            }
        }
        d.deserialize_any(V)
    }
}

whole_number!(
    /// `concurrency` (of a key, or of a task in `[limits.TASK]`): 1 or more.
    Concurrency(u32) from 1, to i64::from(u32::MAX),
        " (the most attempts at once; to stop a task, pause it: `runyard task pause TASK`)"
);

/// `rate`: `COUNT/s`, `COUNT/m` or `COUNT/h` in a string.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileRate(pub(super) runyard_core::Rate);

impl<'de> Deserialize<'de> for FileRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileRate, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate in a string: COUNT/s, COUNT/m or COUNT/h, e.g. \"100/s\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileRate, E> {
                v.parse::<runyard_core::Rate>()
                    .map(FileRate)
                    .map_err(|e| E::custom(clip(&e.to_string(), ARG_CHARS * 2)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `concurrency_key` and `rate_key`: `NAME` or `NAME:VALUE` in a string.
#[derive(Debug, Clone)]
pub(super) struct FileKey(pub(super) runyard_core::FlowKey);

impl<'de> Deserialize<'de> for FileKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileKey, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key in a string: NAME or NAME:VALUE, e.g. \"tenant:42\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileKey, E> {
                v.parse::<runyard_core::FlowKey>()
                    .map(FileKey)
                    .map_err(|e| E::custom(clip(&e.to_string(), ARG_CHARS * 2)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `on_conflict`: `"skip"` or `"replace"`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileOnConflict(pub(super) runyard_core::OnConflict);

impl<'de> Deserialize<'de> for FileOnConflict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileOnConflict, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileOnConflict;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"skip\" (keep the waiting job, the default) or \"replace\" (it takes the \
                     new parameters and run_at)",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileOnConflict, E> {
                v.parse::<runyard_core::OnConflict>()
                    .map(FileOnConflict)
                    .map_err(|_| {
                        E::custom(format!(
                            "unknown on_conflict `{}`: expected \"skip\" (keep the waiting job, \
                             the default) or \"replace\" (it takes the new parameters and run_at)",
                            clip(v, ARG_CHARS)
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}
