//! `runyard exec`: a parallel command runner (like `xargs -P` or GNU
//! parallel) with retries, timeouts, a job log and a report.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use runyard::queue::{MemoryQueue, Queue};
use runyard::{
    write_report_json, Engine, EngineConfig, Event, EventSink, JobId, JobSpec, JobState, JsonLines,
    Mode, Registry, Report,
};
use serde_json::json;

use crate::args::{Color, JobFlags};
use crate::jobs::{create_output, is_stdout};
use crate::output::{print_summary, Human, ProgressView};
use crate::UsageError;

pub(crate) const EXEC_HELP: &str = "\
INPUTS
  one per line on standard input (the default), or `-a FILE`, or after `:::`
  on the command line:  runyard exec -j4 gzip -k {} ::: a.log b.log

PLACEHOLDERS (also inside a word, e.g. out/{/.}.gz)
  {}    the input              {.}   the input without its extension
  {/}   the basename           {//}  the directory name
  {/.}  basename, no extension {#}   the job number, from 1
  With no placeholder, the input is appended as the last argument.

OUTPUT
  Standard output carries only the commands' output, each job's printed whole
  when it ends (in input order with --keep-order); runyard's own messages go
  to standard error.

EXIT CODES
  0 every job succeeded, 1 a job ended dead or cancelled, 2 bad input
  (nothing ran), 130 interrupted.";

#[derive(Debug, Args)]
#[command(after_long_help = EXEC_HELP)]
pub(crate) struct ExecArgs {
    /// Jobs running at once (default: the cores).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = crate::args::parse_at_least_one)]
    jobs: Option<u64>,

    /// Read inputs from FILE, one per line.
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_file: Option<PathBuf>,

    /// Inputs are separated by NUL, not newline (for `find -print0`).
    #[arg(short = '0', long = "null")]
    null: bool,

    /// Print each job's output in input order (not as jobs end).
    #[arg(short = 'k', long)]
    keep_order: bool,

    /// Run the command line through `sh -c`, inputs shell-quoted.
    #[arg(long)]
    shell: bool,

    /// On the first job that ends dead: `soon` starts no more jobs and lets
    /// running ones finish; `now` also cancels the running ones.
    #[arg(long, value_enum)]
    halt: Option<Halt>,

    /// Write a line per finished job to FILE (tab-separated: Seq, Input,
    /// Exitval, Signal, Attempts, Starttime, JobRuntime, Command).
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    #[command(flatten)]
    flags: JobFlags,

    /// Write the full report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write every job state transition as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// After Ctrl-C, how long running commands may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::args::parse_positive_duration)]
    grace: Duration,

    /// The command and its arguments, then optionally `::: INPUT...`.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Halt {
    Soon,
    Now,
}

/// One piece of a command word.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Input,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
    Seq,
}

const PLACEHOLDERS: [(&str, Piece); 6] = [
    ("{}", Piece::Input),
    ("{.}", Piece::NoExt),
    ("{//}", Piece::Dir),
    ("{/.}", Piece::BaseNoExt),
    ("{/}", Piece::Base),
    ("{#}", Piece::Seq),
];

/// Splits a word into literal text and placeholders. A `{` followed by
/// `}`, `.`, `/` or `#` starts a placeholder and must form one; other braces
/// are literal.
fn parse_word(word: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('{') {
        lit.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some((text, p)) = PLACEHOLDERS.iter().find(|(t, _)| rest.starts_with(t)) {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(p.clone());
            rest = &rest[text.len()..];
            continue;
        }
        if matches!(rest[1..].chars().next(), Some('.' | '/' | '#')) {
            let hint = "placeholders are {}, {.}, {/}, {//}, {/.}, {#}";
            return Err(match rest.find('}') {
                Some(end) => format!(
                    "unknown placeholder `{}` in `{word}`; {hint}",
                    &rest[..=end]
                ),
                None => format!("unclosed placeholder `{rest}` in `{word}`; {hint}"),
            });
        }
        lit.push('{');
        rest = &rest[1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn basename(s: &str) -> &str {
    s.rsplit_once('/').map_or(s, |(_, b)| b)
}

/// Everything before the last `.` after the last `/` (as GNU parallel's
/// `{.}`: `.hidden` has no name left, only an extension).
fn without_ext(s: &str) -> &str {
    let base_start = s.rfind('/').map_or(0, |i| i + 1);
    match s[base_start..].rfind('.') {
        Some(dot) => &s[..base_start + dot],
        None => s,
    }
}

fn dirname(s: &str) -> &str {
    match s.rfind('/') {
        Some(0) => "/",
        Some(i) => &s[..i],
        None => ".",
    }
}

fn fill(word: &[Piece], input: &str, seq: u64, quote: bool) -> String {
    let q = |s: &str| if quote { shell_quote(s) } else { s.to_string() };
    word.iter()
        .map(|p| match p {
            Piece::Lit(s) => s.clone(),
            Piece::Input => q(input),
            Piece::NoExt => q(without_ext(input)),
            Piece::Base => q(basename(input)),
            Piece::Dir => q(dirname(input)),
            Piece::BaseNoExt => q(without_ext(basename(input))),
            Piece::Seq => seq.to_string(),
        })
        .collect()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command template: its words, and whether any has a placeholder.
struct Template {
    words: Vec<Vec<Piece>>,
    has_placeholder: bool,
}

impl Template {
    fn parse(words: &[String]) -> Result<Template, String> {
        let words = words
            .iter()
            .map(|w| parse_word(w))
            .collect::<Result<Vec<_>, _>>()?;
        let has_placeholder = words.iter().flatten().any(|p| !matches!(p, Piece::Lit(_)));
        Ok(Template {
            words,
            has_placeholder,
        })
    }

    /// The argv for one input.
    fn argv(&self, input: &str, seq: u64) -> Vec<String> {
        let mut argv: Vec<String> = self
            .words
            .iter()
            .map(|w| fill(w, input, seq, false))
            .collect();
        if !self.has_placeholder {
            argv.push(input.to_string());
        }
        argv
    }

    /// The `sh -c` line for one input.
    fn line(&self, input: &str, seq: u64) -> String {
        let mut words: Vec<String> = self
            .words
            .iter()
            .map(|w| fill(w, input, seq, true))
            .collect();
        if !self.has_placeholder {
            words.push(shell_quote(input));
        }
        words.join(" ")
    }
}

fn read_inputs(args: &ExecArgs, listed: Option<&[String]>) -> Result<Vec<String>, UsageError> {
    if let Some(list) = listed {
        return Ok(list.to_vec());
    }
    let mut text = Vec::new();
    match &args.arg_file {
        Some(f) => std::fs::File::open(f)
            .and_then(|mut file| file.read_to_end(&mut text))
            .map_err(|e| UsageError(format!("{}: cannot read the input file: {e}", f.display())))?,
        None => std::io::stdin()
            .lock()
            .read_to_end(&mut text)
            .map_err(|e| UsageError(format!("cannot read inputs from standard input: {e}")))?,
    };
    let sep = if args.null { b'\0' } else { b'\n' };
    let mut inputs: Vec<String> = text
        .split(|b| *b == sep)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    // A final separator ends the last input; it does not start an empty one.
    if inputs.last().is_some_and(String::is_empty) {
        inputs.pop();
    }
    Ok(inputs)
}

/// What the printer knows of each job, by job number.
struct Meta {
    input: String,
    command: String,
}

/// Prints each finished job's output whole, writes the job log, and halts
/// the run when asked to.
struct Printer {
    tx: Mutex<Sender<JobId>>,
    halt: Option<Halt>,
    halted: AtomicBool,
    interrupt: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl EventSink for Printer {
    fn event(&self, e: &Event<'_>) {
        let (job, dead) = match e {
            Event::Succeeded { job, .. } | Event::Cancelled { job, .. } => (*job, false),
            Event::Dead { job, .. } => (*job, true),
            _ => return,
        };
        let _ = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        if dead && self.halt.is_some() && !self.halted.swap(true, Ordering::SeqCst) {
            if let Some(interrupt) = self.interrupt.get() {
                interrupt();
                if self.halt == Some(Halt::Now) {
                    interrupt();
                }
            }
        }
    }
}

pub(crate) fn exec(
    args: ExecArgs,
    color: Color,
    registry: Arc<Registry>,
) -> anyhow::Result<ExitCode> {
    let (command, listed) = match args.command.iter().position(|w| w == ":::") {
        Some(i) => {
            let list = &args.command[i + 1..];
            if list.iter().any(|w| w == ":::") {
                return Err(UsageError("only one `:::` list of inputs is supported".into()).into());
            }
            (&args.command[..i], Some(list))
        }
        None => (&args.command[..], None),
    };
    if command.is_empty() {
        return Err(UsageError(
            "no command given: runyard exec [OPTIONS] -- COMMAND [ARGS...]".into(),
        )
        .into());
    }
    if listed.is_some() && args.arg_file.is_some() {
        return Err(UsageError("give inputs after `:::` or with -a FILE, not both".into()).into());
    }
    let template = Template::parse(command).map_err(UsageError)?;
    let inputs = read_inputs(&args, listed)?;

    let flags = args.flags.options();
    let engine = Engine::new(
        registry,
        EngineConfig {
            mode: args.flags.mode.unwrap_or(Mode::Auto),
            concurrency: Some(args.jobs.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |j| j as usize,
            )),
            grace: args.grace,
            // With --halt, nothing may start once a job has ended dead.
            prefetch: args.halt.is_none(),
            ..EngineConfig::default()
        },
    );
    let outdir = tempfile::Builder::new()
        .prefix("runyard-exec-")
        .tempdir()
        .context("creating a directory for the commands' output")?;
    let mut metas = Vec::with_capacity(inputs.len());
    let mut jobs = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let (cmd, command) = if args.shell {
            let line = template.line(&input, seq);
            (json!(line), line)
        } else {
            let argv = template.argv(&input, seq);
            let shown = argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            (json!(argv), shown)
        };
        let params = json!({
            "cmd": cmd,
            "shell": args.shell,
            "stdout_file": outdir.path().join(format!("{seq}.out")),
            "stderr_file": outdir.path().join(format!("{seq}.err")),
        });
        let spec = JobSpec::new("shell")
            .params(&params)?
            .with_options(flags.clone());
        jobs.push(
            engine
                .prepare(&spec)
                .map_err(|e| UsageError(format!("input {seq} (`{input}`): {e}")))?,
        );
        metas.push(Meta { input, command });
    }
    let json_out = args
        .json
        .as_ref()
        .map(|p| create_output(p, "report"))
        .transpose()?;
    let events_out = args
        .events
        .as_ref()
        .map(|p| create_output(p, "events"))
        .transpose()?;
    if args.json.as_deref().is_some_and(is_stdout) || args.events.as_deref().is_some_and(is_stdout)
    {
        return Err(UsageError(
            "standard output carries the commands' output: give --json and --events a file".into(),
        )
        .into());
    }
    let joblog = match &args.joblog {
        Some(p) => {
            let mut f = std::fs::File::create(p).map_err(|e| {
                UsageError(format!("{}: cannot create the job log: {e}", p.display()))
            })?;
            writeln!(
                f,
                "Seq\tInput\tExitval\tSignal\tAttempts\tStarttime\tJobRuntime\tCommand"
            )?;
            Some(f)
        }
        None => None,
    };

    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    let (tx, rx) = channel::<JobId>();
    let printer = Arc::new(Printer {
        tx: Mutex::new(tx),
        halt: args.halt,
        halted: AtomicBool::new(false),
        interrupt: OnceLock::new(),
    });
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![printer.clone()];
    if let Some(w) = events_out {
        sinks.push(Arc::new(JsonLines::new(w)));
    }
    let run = engine.start(Arc::clone(&queue), sinks);
    let _ = printer.interrupt.set(Box::new(run.interrupter()));
    let interrupt = run.interrupter();
    let presses = Arc::new(AtomicU32::new(0));
    let p = Arc::clone(&presses);
    let _ = ctrlc::set_handler(move || {
        if p.fetch_add(1, Ordering::SeqCst) >= 2 {
            std::process::exit(130);
        }
        interrupt();
    });

    let total = jobs.len() as u64;
    let printing = {
        let q = Arc::clone(&queue);
        let dir = outdir.path().to_path_buf();
        let keep_order = args.keep_order;
        std::thread::spawn(move || print_outputs(rx, &*q, &dir, &metas, keep_order, joblog))
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let source = run.progress_source();
        ProgressView::start(total, move || source().ok())
    });
    run.submit_prepared(jobs).context("enqueueing jobs")?;
    run.close();
    let out = run.wait();
    if let Some(p) = progress {
        p.finish();
    }
    drop(printer);
    let printed = printing.join().expect("the printer does not panic")?;

    let summary = Report::summarize(&*queue, out.wall, out.interrupted)?;
    if let Some(w) = json_out {
        write_report_json(&*queue, &summary, w)?;
    }
    let human = Human::new(true, color);
    if human.is_terminal {
        print_summary(&human, &summary);
    } else {
        for line in printed.dead {
            human.line(&line);
        }
    }
    if let Some(e) = out.error {
        return Err(anyhow::Error::new(e).context("the run stopped early"));
    }
    Ok(if presses.load(Ordering::SeqCst) > 0 {
        ExitCode::from(130)
    } else if summary.all_succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What the printer leaves for the end: a line per dead job.
struct Printed {
    dead: Vec<String>,
}

fn print_outputs(
    rx: std::sync::mpsc::Receiver<JobId>,
    queue: &dyn Queue,
    dir: &Path,
    metas: &[Meta],
    keep_order: bool,
    mut joblog: Option<std::fs::File>,
) -> anyhow::Result<Printed> {
    let mut waiting: BTreeMap<u64, ()> = BTreeMap::new();
    let mut next = 1u64;
    let mut dead = Vec::new();
    let mut emit = |id: u64, dead: &mut Vec<String>| -> anyhow::Result<()> {
        let out_file = dir.join(format!("{id}.out"));
        let err_file = dir.join(format!("{id}.err"));
        {
            let stdout = std::io::stdout();
            let mut o = stdout.lock();
            if let Ok(bytes) = std::fs::read(&out_file) {
                let _ = o.write_all(&bytes);
                let _ = o.flush();
            }
        }
        if let Ok(bytes) = std::fs::read(&err_file) {
            let stderr = std::io::stderr();
            let mut e = stderr.lock();
            let _ = e.write_all(&bytes);
        }
        let _ = std::fs::remove_file(&out_file);
        let _ = std::fs::remove_file(&err_file);
        let Some(view) = queue.get(JobId(id))? else {
            return Ok(());
        };
        let meta = &metas[id as usize - 1];
        let last = view.attempts.last();
        let (code, signal) = exit_of(&view);
        if view.state == JobState::Dead {
            dead.push(format!(
                "runyard: job {id} (`{}`) dead after {} attempt(s): {}",
                meta.input,
                view.attempts.len(),
                view.last_error().unwrap_or("")
            ));
        }
        if let Some(log) = &mut joblog {
            writeln!(
                log,
                "{id}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                meta.input.replace(['\t', '\n'], " "),
                code.map_or("-1".to_string(), |c| c.to_string()),
                signal.unwrap_or_else(|| "0".into()),
                view.attempts.len(),
                last.map_or("-".into(), |a| format!(
                    "{:.3}",
                    a.started_at.as_micros() as f64 / 1e6
                )),
                last.map_or("0".into(), |a| format!("{:.3}", a.duration().as_secs_f64())),
                meta.command.replace(['\t', '\n'], " "),
            )?;
        }
        Ok(())
    };
    for id in rx {
        let id = id.0;
        if !keep_order {
            emit(id, &mut dead)?;
            continue;
        }
        waiting.insert(id, ());
        while waiting.remove(&next).is_some() {
            emit(next, &mut dead)?;
            next += 1;
        }
    }
    for id in waiting.into_keys() {
        emit(id, &mut dead)?;
    }
    if let Some(log) = &mut joblog {
        log.flush()?;
    }
    Ok(Printed { dead })
}

/// The exit code or signal of a job's last attempt.
fn exit_of(view: &runyard::JobView) -> (Option<i32>, Option<String>) {
    if view.state == JobState::Succeeded {
        let code = serde_json::from_str::<serde_json::Value>(view.output.as_json())
            .ok()
            .and_then(|o| o["exit_code"].as_i64())
            .map(|c| c as i32);
        return (code, None);
    }
    let detail = view
        .attempts
        .last()
        .and_then(|a| a.error.as_ref())
        .and_then(|e| e.detail.as_ref())
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok());
    match detail {
        Some(d) => (
            d["exit_code"].as_i64().map(|c| c as i32),
            d["signal"].as_str().map(str::to_string),
        ),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_inside_words() {
        let t = Template::parse(&[
            "gzip".into(),
            "-c".into(),
            "{}".into(),
            "out/{/.}.gz".into(),
            "#{#}".into(),
        ])
        .unwrap();
        assert_eq!(
            t.argv("logs/app.log", 3),
            ["gzip", "-c", "logs/app.log", "out/app.gz", "#3"]
        );
        let t =
            Template::parse(&["echo".into(), "{.}".into(), "{/}".into(), "{//}".into()]).unwrap();
        assert_eq!(
            t.argv("a/b.tar.gz", 1),
            ["echo", "a/b.tar", "b.tar.gz", "a"]
        );
        assert_eq!(t.argv("plain", 1), ["echo", "plain", "plain", "."]);
        assert_eq!(t.argv(".hidden", 1), ["echo", "", ".hidden", "."]);
    }

    #[test]
    fn without_a_placeholder_the_input_is_appended() {
        let t = Template::parse(&["echo".into(), "x".into()]).unwrap();
        assert_eq!(t.argv("in put", 1), ["echo", "x", "in put"]);
        assert_eq!(t.line("it's", 1), r"echo x 'it'\''s'");
    }

    #[test]
    fn literal_braces_stay_and_broken_placeholders_are_refused() {
        let t = Template::parse(&["printf".into(), "{a}%s{".into()]).unwrap();
        assert_eq!(t.argv("z", 1), ["printf", "{a}%s{", "z"]);
        assert!(parse_word("out/{.")
            .unwrap_err()
            .starts_with("unclosed placeholder `{.` in `out/{.`"));
        assert!(parse_word("{/x}")
            .unwrap_err()
            .starts_with("unknown placeholder `{/x}`"));
    }
}
