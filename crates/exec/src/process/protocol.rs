//! The wire protocol between the engine and its child processes.
//!
//! One concept, with its tests: the wire protocol of process mode.
//!
//! It runs over two pipes that are not the child's standard streams (the
//! child reads file descriptor 3 and writes 4), so whatever a task prints
//! cannot corrupt it. Every message is a frame:
//!
//! ```text
//! u32 LE   length of what follows
//! u8       kind
//! ...      payload (integers little-endian; strings and JSON as u32 length + bytes)
//! ```
//!
//! The child speaks first (`Hello`: the protocol version and its pid); the
//! engine answers with `Setup` (its task names, so both sides number tasks
//! alike, whether it wants to hear of each start, and the page of the
//! reaper's table the child registers its commands in) or, on a version it
//! does not speak, closes the pipes. Then the engine sends `Batch`es of
//! attempts and the child answers each attempt with one `Result`, preceded
//! by a `Started` when the engine asked for them; these travel in groups
//! (at the end of a batch, or within `FLUSH_AFTER` of being written). Which
//! attempt is running at any moment is not a message: the child and its
//! supervisor share a page of memory for it (see `shm`). `Shutdown` asks
//! the child to exit.
//!
//! An attempt whose job has parents is flagged in its batch, and its
//! parents object (JSON, up to `PARENTS_CAP`, 16 MiB) travels before the
//! batch in a `Parents` frame of its own (the attempt's token and the
//! JSON), one per such attempt, so a batch's frame stays small whatever
//! the parents hold and no frame nears `MAX_FRAME`. The child keeps the
//! objects it was sent until the batch that names their tokens arrives;
//! a flagged attempt whose object did not come first is a protocol error,
//! and objects no batch took are dropped with that batch. A frame that cannot be decoded is an error for the
//! side that reads it, never a hang or a panic: the error says which frame,
//! at which byte of it, reading what; the engine replaces the child.

use std::fmt;
use std::io::{self, Read, Write};

use runyard_core::{ErrorIntent, JobId, TaskError, Timestamp};

/// The protocol version; both sides must speak the same.
pub(crate) const VERSION: u32 = 4;

/// Frames larger than this are refused (a garbled length would otherwise
/// make the reader wait for gigabytes).
const MAX_FRAME: usize = 256 << 20;

const HELLO: u8 = 1;
const SETUP: u8 = 2;
const BATCH: u8 = 3;
const RESULT: u8 = 4;
const STARTED: u8 = 5;
const SHUTDOWN: u8 = 6;
const PARENTS: u8 = 7;

/// A frame that could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// A length field of zero, or above the largest frame.
    Length(usize),
    /// A frame of a kind the reading side does not know.
    Kind {
        kind: u8,
        /// Who sent it: `the engine` or `a worker`.
        from: &'static str,
    },
    /// A frame whose body does not decode.
    Body {
        /// The frame's kind, e.g. `Result`.
        frame: &'static str,
        /// The byte of the frame (its length field is bytes 0 to 3) where
        /// the field begins.
        at: usize,
        /// The field being read, e.g. `message`.
        field: &'static str,
        problem: Problem,
    },
}

/// What is wrong with a field of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The frame ends this many bytes before the field does.
    Short(usize),
    /// A string that is not UTF-8.
    NotUtf8,
    /// A value the field cannot take.
    Unknown(u64),
    /// Bytes after the last field.
    Trailing(usize),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Length(len) => {
                write!(f, "protocol error: a frame of impossible length {len}")
            }
            ProtocolError::Kind { kind, from } => {
                write!(f, "protocol error: unknown frame kind {kind} from {from}")
            }
            ProtocolError::Body {
                frame,
                at,
                field,
                problem,
            } => {
                write!(
                    f,
                    "protocol error: a {frame} frame is malformed at byte {at} (`{field}`): "
                )?;
                match problem {
                    Problem::Short(n) => write!(f, "the frame ends {n} bytes early"),
                    Problem::NotUtf8 => write!(f, "not UTF-8"),
                    Problem::Unknown(v) => write!(f, "no such value: {v}"),
                    Problem::Trailing(n) => write!(f, "{n} unexpected bytes after the last field"),
                }
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// One attempt as sent to a child.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireAttempt {
    pub(crate) token: u64,
    pub(crate) task: u32,
    pub(crate) job: JobId,
    pub(crate) attempt: u32,
    pub(crate) params: String,
    /// Its parents object comes in a `Parents` frame before the batch.
    pub(crate) parents: bool,
}

/// How an attempt ended, as a child reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WireOutcome {
    Succeeded(String),
    Failed {
        intent: ErrorIntent,
        message: String,
        detail: Option<String>,
    },
    Panicked(String),
}

/// A child's report of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireResult {
    pub(crate) token: u64,
    pub(crate) started_at: Timestamp,
    pub(crate) duration_us: u64,
    pub(crate) outcome: WireOutcome,
}

/// A message from the engine to a child.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToChild {
    Setup {
        version: u32,
        tasks: Vec<String>,
        /// Send a `Started` before each attempt's result.
        report_starts: bool,
        /// The page of the reaper's table for the child's commands (the
        /// table is on descriptor 7), if the engine has a reaper.
        groups: Option<u32>,
    },
    Batch(Vec<WireAttempt>),
    /// The parents object of the attempt `token` of the next batch.
    Parents {
        token: u64,
        json: String,
    },
    Shutdown,
}

/// A message from a child to the engine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FromChild {
    Hello { version: u32, pid: u32 },
    Started { token: u64, at: Timestamp },
    Result(WireResult),
}

struct Enc(Vec<u8>);

impl Enc {
    fn frame(kind: u8) -> Enc {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&[0, 0, 0, 0, kind]);
        Enc(v)
    }
    fn u8(&mut self, x: u8) {
        self.0.push(x);
    }
    fn u32(&mut self, x: u32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn i64(&mut self, x: i64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn finish(mut self, out: &mut Vec<u8>) {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.0);
    }
}

/// Reads the fields of one frame's body, keeping track of where it is.
struct Dec<'a> {
    buf: &'a [u8],
    frame: &'static str,
    /// The byte of the frame at which `buf` begins.
    at: usize,
}

impl<'a> Dec<'a> {
    fn new(frame: &'static str, body: &'a [u8]) -> Dec<'a> {
        // The body follows the length (4 bytes) and the kind (1).
        Dec {
            buf: body,
            frame,
            at: 5,
        }
    }
    fn error(&self, field: &'static str, problem: Problem) -> ProtocolError {
        ProtocolError::Body {
            frame: self.frame,
            at: self.at,
            field,
            problem,
        }
    }
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(self.error(field, Problem::Short(n - self.buf.len())));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        self.at += n;
        Ok(a)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }
    fn str(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        // Problems are reported where the string begins, at its length.
        let at = self.at;
        let n = self.u32(field)? as usize;
        let problem = match self.buf.get(..n) {
            None => Problem::Short(n - self.buf.len()),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => {
                    let s = s.to_string();
                    self.take(n, field)?;
                    return Ok(s);
                }
                Err(_) => Problem::NotUtf8,
            },
        };
        Err(ProtocolError::Body {
            frame: self.frame,
            at,
            field,
            problem,
        })
    }
    fn done(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.error("end", Problem::Trailing(self.buf.len())))
        }
    }
}

impl ToChild {
    /// Appends a `Parents` frame to `out` without owning its JSON.
    pub(crate) fn encode_parents(token: u64, json: &str, out: &mut Vec<u8>) {
        let mut e = Enc::frame(PARENTS);
        e.0.reserve(json.len() + 12);
        e.u64(token);
        e.str(json);
        e.finish(out);
    }

    /// Appends this message's frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ToChild::Setup {
                version,
                tasks,
                report_starts,
                groups,
            } => {
                let mut e = Enc::frame(SETUP);
                e.u32(*version);
                e.u8(u8::from(*report_starts));
                e.u32(tasks.len() as u32);
                for t in tasks {
                    e.str(t);
                }
                e.u8(u8::from(groups.is_some()));
                e.u32(groups.unwrap_or(0));
                e.finish(out);
            }
            ToChild::Batch(attempts) => {
                let mut e = Enc::frame(BATCH);
                e.u32(attempts.len() as u32);
                for a in attempts {
                    e.u64(a.token);
                    e.u32(a.task);
                    e.u64(a.job.0);
                    e.u32(a.attempt);
                    e.str(&a.params);
                    e.u8(u8::from(a.parents));
                }
                e.finish(out);
            }
            ToChild::Parents { token, json } => ToChild::encode_parents(*token, json, out),
            ToChild::Shutdown => Enc::frame(SHUTDOWN).finish(out),
        }
    }

    fn decode(kind: u8, body: &[u8]) -> Result<ToChild, ProtocolError> {
        let m = match kind {
            SETUP => {
                let mut d = Dec::new("Setup", body);
                let version = d.u32("version")?;
                let report_starts = d.u8("report_starts")? != 0;
                let n = d.u32("tasks")? as usize;
                let tasks = (0..n).map(|_| d.str("task")).collect::<Result<_, _>>()?;
                let has_groups = d.u8("groups")? != 0;
                let page = d.u32("groups")?;
                d.done()?;
                ToChild::Setup {
                    version,
                    tasks,
                    report_starts,
                    groups: has_groups.then_some(page),
                }
            }
            BATCH => {
                let mut d = Dec::new("Batch", body);
                let n = d.u32("attempts")? as usize;
                let mut v = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    v.push(WireAttempt {
                        token: d.u64("token")?,
                        task: d.u32("task")?,
                        job: JobId(d.u64("job")?),
                        attempt: d.u32("attempt")?,
                        params: d.str("params")?,
                        parents: {
                            let at = d.at;
                            match d.u8("parents")? {
                                0 => false,
                                1 => true,
                                k => {
                                    return Err(ProtocolError::Body {
                                        frame: "Batch",
                                        at,
                                        field: "parents",
                                        problem: Problem::Unknown(k.into()),
                                    })
                                }
                            }
                        },
                    });
                }
                d.done()?;
                ToChild::Batch(v)
            }
            PARENTS => {
                let mut d = Dec::new("Parents", body);
                let token = d.u64("token")?;
                let json = d.str("json")?;
                d.done()?;
                ToChild::Parents { token, json }
            }
            SHUTDOWN => {
                Dec::new("Shutdown", body).done()?;
                ToChild::Shutdown
            }
            other => {
                return Err(ProtocolError::Kind {
                    kind: other,
                    from: "the engine",
                })
            }
        };
        Ok(m)
    }
}

impl FromChild {
    /// Appends this message's frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FromChild::Hello { version, pid } => {
                let mut e = Enc::frame(HELLO);
                e.u32(*version);
                e.u32(*pid);
                e.finish(out);
            }
            FromChild::Started { token, at } => {
                let mut e = Enc::frame(STARTED);
                e.u64(*token);
                e.i64(at.as_micros());
                e.finish(out);
            }
            FromChild::Result(r) => {
                let mut e = Enc::frame(RESULT);
                e.u64(r.token);
                e.i64(r.started_at.as_micros());
                e.u64(r.duration_us);
                match &r.outcome {
                    WireOutcome::Succeeded(out) => {
                        e.u8(0);
                        e.str(out);
                    }
                    WireOutcome::Failed {
                        intent,
                        message,
                        detail,
                    } => {
                        e.u8(1);
                        let (kind, ms) = match intent {
                            ErrorIntent::Retryable => (0, 0),
                            ErrorIntent::Permanent => (1, 0),
                            ErrorIntent::RetryAfter(d) => (2, d.as_millis() as u64),
                        };
                        e.u8(kind);
                        e.u64(ms);
                        e.str(message);
                        e.str(detail.as_deref().unwrap_or(""));
                    }
                    WireOutcome::Panicked(m) => {
                        e.u8(2);
                        e.str(m);
                    }
                }
                e.finish(out);
            }
        }
    }

    fn decode(kind: u8, body: &[u8]) -> Result<FromChild, ProtocolError> {
        let m = match kind {
            HELLO => {
                let mut d = Dec::new("Hello", body);
                let m = FromChild::Hello {
                    version: d.u32("version")?,
                    pid: d.u32("pid")?,
                };
                d.done()?;
                m
            }
            STARTED => {
                let mut d = Dec::new("Started", body);
                let m = FromChild::Started {
                    token: d.u64("token")?,
                    at: Timestamp::from_micros(d.i64("at")?),
                };
                d.done()?;
                m
            }
            RESULT => {
                let mut d = Dec::new("Result", body);
                let token = d.u64("token")?;
                let started_at = Timestamp::from_micros(d.i64("started_at")?);
                let duration_us = d.u64("duration_us")?;
                let before_outcome = d.at;
                let outcome = match d.u8("outcome")? {
                    0 => WireOutcome::Succeeded(d.str("output")?),
                    1 => {
                        let before_intent = d.at;
                        let intent = match (d.u8("intent")?, d.u64("retry_after_ms")?) {
                            (0, _) => ErrorIntent::Retryable,
                            (1, _) => ErrorIntent::Permanent,
                            (2, ms) => {
                                ErrorIntent::RetryAfter(std::time::Duration::from_millis(ms))
                            }
                            (k, _) => {
                                return Err(ProtocolError::Body {
                                    frame: "Result",
                                    at: before_intent,
                                    field: "intent",
                                    problem: Problem::Unknown(k.into()),
                                })
                            }
                        };
                        let message = d.str("message")?;
                        let detail = Some(d.str("detail")?).filter(|s| !s.is_empty());
                        WireOutcome::Failed {
                            intent,
                            message,
                            detail,
                        }
                    }
                    2 => WireOutcome::Panicked(d.str("message")?),
                    k => {
                        return Err(ProtocolError::Body {
                            frame: "Result",
                            at: before_outcome,
                            field: "outcome",
                            problem: Problem::Unknown(k.into()),
                        })
                    }
                };
                d.done()?;
                FromChild::Result(WireResult {
                    token,
                    started_at,
                    duration_us,
                    outcome,
                })
            }
            other => {
                return Err(ProtocolError::Kind {
                    kind: other,
                    from: "a worker",
                })
            }
        };
        Ok(m)
    }
}

impl WireOutcome {
    /// How a task's error travels.
    pub(crate) fn failed(e: TaskError) -> WireOutcome {
        let (intent, message, detail) = e.into_parts();
        WireOutcome::Failed {
            intent,
            message,
            detail: detail.map(|d| d.get().to_string()),
        }
    }
}

/// Reads frames from a byte stream, keeping what arrived beyond the last
/// whole frame for the next call. The buffer is zeroed once and grows only
/// for frames larger than it.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }
}

impl FrameReader {
    /// Reads once from `r` (which must have data or be at its end). Returns
    /// false at the end of the stream.
    pub(crate) fn fill<R: Read>(&mut self, r: &mut R) -> io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len();
                self.buf.resize(n * 2, 0);
            }
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next whole frame's (kind, body), if one has arrived.
    fn next_raw(&mut self) -> Result<Option<(u8, &[u8])>, ProtocolError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(ProtocolError::Length(len));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let kind = avail[4];
        let (s, e) = (self.start + 5, self.start + 4 + len);
        self.start = e;
        Ok(Some((kind, &self.buf[s..e])))
    }

    /// Whether bytes of an unfinished frame are waiting.
    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.start < self.end
    }

    /// The next message from a child, if a whole one has arrived.
    pub(crate) fn next_from_child(&mut self) -> Result<Option<FromChild>, ProtocolError> {
        match self.next_raw()? {
            Some((kind, body)) => FromChild::decode(kind, body).map(Some),
            None => Ok(None),
        }
    }

    /// The next message from the engine, if a whole one has arrived.
    pub(crate) fn next_to_child(&mut self) -> Result<Option<ToChild>, ProtocolError> {
        match self.next_raw()? {
            Some((kind, body)) => ToChild::decode(kind, body).map(Some),
            None => Ok(None),
        }
    }
}

/// Writes all of `buf`, retrying interrupted writes.
pub(crate) fn write_all(w: &mut impl Write, buf: &[u8]) -> io::Result<()> {
    w.write_all(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_to(m: ToChild) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = FrameReader::default();
        r.fill(&mut &buf[..]).unwrap();
        assert_eq!(r.next_to_child().unwrap(), Some(m));
        assert_eq!(r.next_to_child().unwrap(), None);
    }

    fn roundtrip_from(m: FromChild) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = FrameReader::default();
        r.fill(&mut &buf[..]).unwrap();
        assert_eq!(r.next_from_child().unwrap(), Some(m));
    }

    #[test]
    fn every_message_round_trips() {
        roundtrip_to(ToChild::Setup {
            version: VERSION,
            tasks: vec!["cpu".into(), "ünïcode".into()],
            report_starts: true,
            groups: Some(3),
        });
        roundtrip_to(ToChild::Setup {
            version: VERSION,
            tasks: vec![],
            report_starts: false,
            groups: None,
        });
        roundtrip_to(ToChild::Batch(vec![
            WireAttempt {
                token: 1 << 40,
                task: 3,
                job: JobId(9),
                attempt: 2,
                params: r#"{"n":5}"#.into(),
                parents: true,
            },
            WireAttempt {
                token: 2,
                task: 0,
                job: JobId(10),
                attempt: 1,
                params: "{}".into(),
                parents: false,
            },
        ]));
        roundtrip_to(ToChild::Parents {
            token: 1 << 40,
            json: r#"{"extract":{"rows":3},"shard":[1,2]}"#.into(),
        });
        roundtrip_to(ToChild::Shutdown);
        roundtrip_from(FromChild::Hello {
            version: 1,
            pid: 42,
        });
        roundtrip_from(FromChild::Started {
            token: 3,
            at: Timestamp::from_micros(1_700_000_000_000_001),
        });
        for outcome in [
            WireOutcome::Succeeded("[1,2]".into()),
            WireOutcome::Failed {
                intent: ErrorIntent::RetryAfter(std::time::Duration::from_millis(1500)),
                message: "busy".into(),
                detail: Some(r#"{"status":429}"#.into()),
            },
            WireOutcome::Failed {
                intent: ErrorIntent::Permanent,
                message: "no".into(),
                detail: None,
            },
            WireOutcome::Panicked("boom".into()),
        ] {
            roundtrip_from(FromChild::Result(WireResult {
                token: 7,
                started_at: Timestamp::from_micros(1_700_000_000_000_000),
                duration_us: 12,
                outcome,
            }));
        }
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut buf = Vec::new();
        for i in 0..100 {
            FromChild::Hello { version: i, pid: i }.encode(&mut buf);
        }
        let mut r = FrameReader::default();
        let mut got = 0;
        for chunk in buf.chunks(7) {
            r.fill(&mut &chunk[..]).unwrap();
            while let Some(FromChild::Hello { version, .. }) = r.next_from_child().unwrap() {
                assert_eq!(version, got);
                got += 1;
            }
        }
        assert_eq!(got, 100);
        assert!(!r.has_partial());
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        let mut r = FrameReader::default();
        r.fill(&mut &[0xff, 0xff, 0xff, 0xff, 1, 2][..]).unwrap();
        assert!(r
            .next_from_child()
            .unwrap_err()
            .to_string()
            .contains("impossible length"));
        let mut r = FrameReader::default();
        r.fill(&mut &[2, 0, 0, 0, 99, 0][..]).unwrap();
        assert!(r
            .next_from_child()
            .unwrap_err()
            .to_string()
            .contains("unknown frame kind 99"));
        let mut r = FrameReader::default();
        r.fill(&mut &[3, 0, 0, 0, HELLO, 1, 0][..]).unwrap();
        assert_eq!(
            r.next_from_child().unwrap_err().to_string(),
            "protocol error: a Hello frame is malformed at byte 5 (`version`): the frame ends 2 bytes early"
        );
    }

    mod properties {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;

        fn text() -> impl Strategy<Value = String> {
            "[a-zé\\PC{}\"]{0,12}"
        }

        fn to_worker() -> impl Strategy<Value = ToChild> {
            let attempt = (
                any::<u64>(),
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                text(),
                any::<bool>(),
            )
                .prop_map(|(token, task, job, attempt, params, parents)| WireAttempt {
                    token,
                    task,
                    job: JobId(job),
                    attempt,
                    params,
                    parents,
                });
            prop_oneof![
                (
                    any::<u32>(),
                    vec(text(), 0..4),
                    any::<bool>(),
                    any::<Option<u32>>()
                )
                    .prop_map(|(version, tasks, report_starts, groups)| {
                        ToChild::Setup {
                            version,
                            tasks,
                            report_starts,
                            groups,
                        }
                    }),
                vec(attempt, 0..4).prop_map(ToChild::Batch),
                (any::<u64>(), text()).prop_map(|(token, json)| ToChild::Parents { token, json }),
                Just(ToChild::Shutdown),
            ]
        }

        fn from_worker() -> impl Strategy<Value = FromChild> {
            let intent = prop_oneof![
                Just(ErrorIntent::Retryable),
                Just(ErrorIntent::Permanent),
                any::<u64>()
                    .prop_map(|ms| ErrorIntent::RetryAfter(std::time::Duration::from_millis(ms))),
            ];
            let outcome = prop_oneof![
                text().prop_map(WireOutcome::Succeeded),
                (intent, text(), proptest::option::of("[a-z{}]{1,8}")).prop_map(
                    |(intent, message, detail)| WireOutcome::Failed {
                        intent,
                        message,
                        detail,
                    }
                ),
                text().prop_map(WireOutcome::Panicked),
            ];
            prop_oneof![
                (any::<u32>(), any::<u32>())
                    .prop_map(|(version, pid)| FromChild::Hello { version, pid }),
                (any::<u64>(), any::<i64>()).prop_map(|(token, at)| FromChild::Started {
                    token,
                    at: Timestamp::from_micros(at),
                }),
                (any::<u64>(), any::<i64>(), any::<u64>(), outcome).prop_map(
                    |(token, at, duration_us, outcome)| FromChild::Result(WireResult {
                        token,
                        started_at: Timestamp::from_micros(at),
                        duration_us,
                        outcome,
                    })
                ),
            ]
        }

        /// Feeds `bytes` to a reader `cut` bytes at a time and decodes every
        /// frame as the engine (or, with `to_worker`, a child) would, until
        /// the bytes run out or a frame is refused. Checks that a refusal
        /// says where, within the frame it names, it went wrong.
        fn decode_all(bytes: &[u8], cut: usize, to_worker: bool) -> Result<usize, ProtocolError> {
            let mut r = FrameReader::default();
            let mut frames = 0;
            for chunk in bytes.chunks(cut.max(1)) {
                r.fill(&mut &chunk[..]).unwrap();
                loop {
                    // The frame about to be decoded, for checking a refusal.
                    let avail = &r.buf[r.start..r.end];
                    let frame_len = avail
                        .get(..4)
                        .map(|l| 4 + u32::from_le_bytes(l.try_into().unwrap()) as usize);
                    let got = if to_worker {
                        r.next_to_child().map(|m| m.is_some())
                    } else {
                        r.next_from_child().map(|m| m.is_some())
                    };
                    match got {
                        Ok(true) => frames += 1,
                        Ok(false) => break,
                        Err(e) => {
                            check_refusal(&e, frame_len.expect("a length was read"));
                            return Err(e);
                        }
                    }
                }
            }
            Ok(frames)
        }

        /// The messages of `bytes`, fed to a reader `cut` bytes at a time.
        fn read_cut<M>(
            bytes: &[u8],
            cut: usize,
            next: fn(&mut FrameReader) -> Result<Option<M>, ProtocolError>,
        ) -> Vec<M> {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                r.fill(&mut &chunk[..]).unwrap();
                while let Some(m) = next(&mut r).unwrap() {
                    got.push(m);
                }
            }
            got
        }

        fn check_refusal(e: &ProtocolError, frame_len: usize) {
            let said = e.to_string();
            assert!(said.starts_with("protocol error: "), "{said}");
            match e {
                ProtocolError::Length(len) => {
                    assert!(*len == 0 || *len > MAX_FRAME);
                    assert_eq!(*len + 4, frame_len);
                }
                ProtocolError::Kind { kind, .. } => assert!(said.contains(&kind.to_string())),
                ProtocolError::Body { at, field, .. } => {
                    assert!(
                        (5..=frame_len).contains(at),
                        "byte {at} of a {frame_len}-byte frame"
                    );
                    assert!(
                        said.contains(&format!("at byte {at} (`{field}`)")),
                        "{said}"
                    );
                }
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_and_a_refusal_says_where(
                bytes in vec(any::<u8>(), 0..600), cut in 1usize..80, to_worker: bool
            ) {
                let _ = decode_all(&bytes, cut, to_worker);
            }

            #[test]
            fn any_body_of_any_kind_decodes_or_is_refused_with_its_place(
                kind in 0u8..9, body in vec(any::<u8>(), 0..300), to_worker: bool
            ) {
                let mut frame = ((body.len() + 1) as u32).to_le_bytes().to_vec();
                frame.push(kind);
                frame.extend_from_slice(&body);
                let _ = decode_all(&frame, frame.len(), to_worker);
            }

            #[test]
            fn messages_round_trip_however_they_are_cut(
                to in vec(to_worker(), 1..4), from in vec(from_worker(), 1..4), cut in 1usize..50
            ) {
                let mut bytes = Vec::new();
                to.iter().for_each(|m| m.encode(&mut bytes));
                prop_assert_eq!(&read_cut(&bytes, cut, FrameReader::next_to_child), &to);
                let mut bytes = Vec::new();
                from.iter().for_each(|m| m.encode(&mut bytes));
                prop_assert_eq!(&read_cut(&bytes, cut, FrameReader::next_from_child), &from);
            }

            #[test]
            fn damaged_frames_are_refused_with_their_place_or_decode(
                m in from_worker(), to in to_worker(), at in any::<prop::sample::Index>(),
                byte: u8, shorten in 0usize..8
            ) {
                for (mut bytes, to_worker) in [
                    { let mut b = Vec::new(); m.encode(&mut b); (b, false) },
                    { let mut b = Vec::new(); to.encode(&mut b); (b, true) },
                ] {
                    // A byte changed (the length field included), and the body
                    // cut short under an intact length (or not).
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                    let n = bytes.len();
                    if n > 5 + shorten {
                        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                        bytes.truncate(n - shorten);
                        bytes[..4].copy_from_slice(&len.saturating_sub(shorten as u32).to_le_bytes());
                    }
                    let _ = decode_all(&bytes, 7, to_worker);
                }
            }
        }
    }
}
