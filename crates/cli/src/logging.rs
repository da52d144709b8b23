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
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
/// `RUNYARD_LOG` is a usage error. With the `otlp` feature and an OTLP
/// endpoint set, the subscriber also exports the attempts' spans; the
/// returned [`Installed`] then flushes them when it is finished.
pub(crate) fn install(format: LogFormat) -> Result<Installed, UsageError> {
    let env = std::env::var(LOG_ENV).ok();
    let filter = filter(env.as_deref())?;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(false);
    let printed = match format {
        LogFormat::Text => layer.event_format(Text).boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
    .with_filter(filter);
    #[cfg(feature = "otlp")]
    {
        let exporter = crate::otlp::Exporter::from_env().map_err(UsageError)?;
        let exported = exporter.as_ref().map(|x| {
            x.layer().with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(ATTEMPT_TARGET, tracing::Level::INFO),
            )
        });
        let installed = tracing_subscriber::registry()
            .with(printed)
            .with(exported)
            .try_init()
            .is_ok();
        // Another subscriber already installed (a test harness) is kept,
        // and nothing is exported.
        let exporter = exporter.filter(|_| installed);
        Ok(Installed { exporter })
    }
    #[cfg(not(feature = "otlp"))]
    {
        // Another subscriber already installed (a test harness) is kept.
        let _ = tracing_subscriber::registry().with(printed).try_init();
        Ok(Installed {})
    }
}

/// The target of the engine's attempt spans and their events, which the
/// OTLP exporter takes at `info` and up whatever `RUNYARD_LOG` says.
#[cfg(feature = "otlp")]
const ATTEMPT_TARGET: &str = "runyard::attempt";

/// The installed subscriber's parts that need finishing at the command's
/// end (the OTLP exporter's last spans).
#[derive(Debug)]
pub(crate) struct Installed {
    #[cfg(feature = "otlp")]
    exporter: Option<crate::otlp::Exporter>,
}

impl Installed {
    /// Sends the spans still batched, waiting at most a few seconds.
    pub(crate) fn finish(self) {
        #[cfg(feature = "otlp")]
        if let Some(x) = self.exporter {
            x.shutdown();
        }
    }
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
