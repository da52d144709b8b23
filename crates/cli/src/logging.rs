//! The command's log: the `tracing` events of the engine (and of the jobs
//! it runs), printed on standard error as `--log-format` says and filtered
//! by `RUNYARD_LOG` (docs/tracing.md).
//!
//! By default only the engine's own messages are printed (target
//! `runyard::engine`, info and up), each as the line `runyard: MESSAGE`
//! the command always printed; `RUNYARD_LOG` takes the directives of
//! `tracing_subscriber`'s `EnvFilter` (`info`,
//! `runyard::attempt=debug,runyard::engine=info`, ...). `--log-format
//! json` prints one JSON object a line: `timestamp`, `level`, `target`,
//! `message`, the event's fields, and `span` (the attempt's span and its
//! fields) when there is one.

use std::fmt;
use std::io;

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::exit::UsageError;

/// The environment variable holding the log filter.
pub(crate) const LOG_ENV: &str = "RUNYARD_LOG";

/// What is logged when `RUNYARD_LOG` is unset or empty: the engine's own
/// messages, as they were always printed.
const DEFAULT_FILTER: &str = "runyard::engine=info";

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    // `runyard: MESSAGE key=value ...`, as the command always printed.
    Text,
    // One JSON object a line.
    Json,
}

/// The filter from `RUNYARD_LOG` (`value`), or the default.
fn filter(value: Option<&str>) -> Result<EnvFilter, UsageError> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    EnvFilter::builder()
        .parse(value.unwrap_or(DEFAULT_FILTER))
        .map_err(|e| {
            UsageError(format!(
                "{LOG_ENV}={:?} is not a log filter ({e}): give a level (error, warn, info, \
                 debug, trace, off) or directives TARGET=LEVEL separated by commas, e.g. \
                 {LOG_ENV}=runyard::attempt=debug,runyard::engine=info",
                value.unwrap_or_default()
            ))
        })
}

/// Installs the command's subscriber, once, before anything runs. A bad
/// `RUNYARD_LOG` is a usage error.
pub(crate) fn install(format: LogFormat) -> Result<(), UsageError> {
    let env = std::env::var(LOG_ENV).ok();
    let filter = filter(env.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(false);
    // Another subscriber already installed (a test harness) is kept.
    let _ = match format {
        LogFormat::Text => builder.event_format(Text).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// The text format: `runyard: MESSAGE`, the event's other fields, then
/// the fields of its spans from the outermost, `key=value` each.
struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str("runyard: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(w, " {fields}")?;
                    }
                }
            }
        }
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_or_empty_filter_is_the_default_and_a_bad_one_says_what_is_valid() {
        assert_eq!(filter(None).unwrap().to_string(), DEFAULT_FILTER);
        assert_eq!(filter(Some("  ")).unwrap().to_string(), DEFAULT_FILTER);
        assert_eq!(filter(Some("debug")).unwrap().to_string(), "debug");
        let e = filter(Some("runyard=loud")).unwrap_err().0;
        assert!(
            e.starts_with("RUNYARD_LOG=\"runyard=loud\" is not a log filter ("),
            "{e}"
        );
        assert!(e.contains("error, warn, info, debug, trace, off"), "{e}");
    }
}
