//! The wire protocol between the engine and its worker processes.
//!
//! It runs over two pipes that are not the worker's standard streams (the
//! worker reads file descriptor 3 and writes 4), so whatever a task prints
//! cannot corrupt it. Every message is a frame:
//!
//! ```text
//! u32 LE   length of what follows
//! u8       kind
//! ...      payload (integers little-endian; strings and JSON as u32 length + bytes)
//! ```
//!
//! The worker speaks first (`Hello`: the protocol version and its pid); the
//! engine answers with `Setup` (its task names, so both sides number tasks
//! alike, and whether it wants to hear of each start) or, on a version it
//! does not speak, closes the pipes. Then the engine sends `Batch`es of
//! attempts and the worker answers each attempt with one `Result`, preceded
//! by a `Started` when the engine asked for them; these travel in groups
//! (at the end of a batch, or within `FLUSH_AFTER` of being written). Which
//! attempt is running at any moment is not a message: the worker and its
//! supervisor share a page of memory for it (see `shm`). `Shutdown` asks
//! the worker to exit. A frame that cannot be decoded is an error for the
//! side that reads it, never a hang: the engine replaces the worker.

use std::fmt;
use std::io::{self, Read, Write};

use runyard_core::{ErrorIntent, JobId, TaskError, Timestamp};

/// The protocol version; both sides must speak the same.
pub(crate) const VERSION: u32 = 2;

/// Frames larger than this are refused (a garbled length would otherwise
/// make the reader wait for gigabytes).
const MAX_FRAME: usize = 256 << 20;

const HELLO: u8 = 1;
const SETUP: u8 = 2;
const BATCH: u8 = 3;
const RESULT: u8 = 4;
const STARTED: u8 = 5;
const SHUTDOWN: u8 = 6;

/// A frame that could not be decoded.
#[derive(Debug)]
pub(crate) struct ProtocolError(pub(crate) String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// One attempt as sent to a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireAttempt {
    pub(crate) token: u64,
    pub(crate) task: u32,
    pub(crate) job: JobId,
    pub(crate) attempt: u32,
    pub(crate) params: String,
}

/// How an attempt ended, as a worker reports it.
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

/// A worker's report of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireResult {
    pub(crate) token: u64,
    pub(crate) started_at: Timestamp,
    pub(crate) duration_us: u64,
    pub(crate) outcome: WireOutcome,
}

/// A message from the engine to a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToWorker {
    Setup {
        version: u32,
        tasks: Vec<String>,
        /// Send a `Started` before each attempt's result.
        report_starts: bool,
    },
    Batch(Vec<WireAttempt>),
    Shutdown,
}

/// A message from a worker to the engine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FromWorker {
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

struct Dec<'a> {
    buf: &'a [u8],
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError(format!(
                "a frame ended {} bytes early",
                n - self.buf.len()
            )));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<String, ProtocolError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError("a string is not UTF-8".into()))
    }
    fn done(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError(format!(
                "{} unexpected bytes at the end of a frame",
                self.buf.len()
            )))
        }
    }
}

impl ToWorker {
    /// Appends this message's frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ToWorker::Setup {
                version,
                tasks,
                report_starts,
            } => {
                let mut e = Enc::frame(SETUP);
                e.u32(*version);
                e.u8(u8::from(*report_starts));
                e.u32(tasks.len() as u32);
                for t in tasks {
                    e.str(t);
                }
                e.finish(out);
            }
            ToWorker::Batch(attempts) => {
                let mut e = Enc::frame(BATCH);
                e.u32(attempts.len() as u32);
                for a in attempts {
                    e.u64(a.token);
                    e.u32(a.task);
                    e.u64(a.job.0);
                    e.u32(a.attempt);
                    e.str(&a.params);
                }
                e.finish(out);
            }
            ToWorker::Shutdown => Enc::frame(SHUTDOWN).finish(out),
        }
    }

    fn decode(kind: u8, body: &[u8]) -> Result<ToWorker, ProtocolError> {
        let mut d = Dec { buf: body };
        let m = match kind {
            SETUP => {
                let version = d.u32()?;
                let report_starts = d.u8()? != 0;
                let n = d.u32()? as usize;
                let tasks = (0..n).map(|_| d.str()).collect::<Result<_, _>>()?;
                ToWorker::Setup {
                    version,
                    tasks,
                    report_starts,
                }
            }
            BATCH => {
                let n = d.u32()? as usize;
                let mut v = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    v.push(WireAttempt {
                        token: d.u64()?,
                        task: d.u32()?,
                        job: JobId(d.u64()?),
                        attempt: d.u32()?,
                        params: d.str()?,
                    });
                }
                ToWorker::Batch(v)
            }
            SHUTDOWN => ToWorker::Shutdown,
            other => {
                return Err(ProtocolError(format!(
                    "unknown frame kind {other} from the engine"
                )))
            }
        };
        d.done()?;
        Ok(m)
    }
}

impl FromWorker {
    /// Appends this message's frame to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FromWorker::Hello { version, pid } => {
                let mut e = Enc::frame(HELLO);
                e.u32(*version);
                e.u32(*pid);
                e.finish(out);
            }
            FromWorker::Started { token, at } => {
                let mut e = Enc::frame(STARTED);
                e.u64(*token);
                e.i64(at.as_micros());
                e.finish(out);
            }
            FromWorker::Result(r) => {
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

    fn decode(kind: u8, body: &[u8]) -> Result<FromWorker, ProtocolError> {
        let mut d = Dec { buf: body };
        let m = match kind {
            HELLO => FromWorker::Hello {
                version: d.u32()?,
                pid: d.u32()?,
            },
            STARTED => FromWorker::Started {
                token: d.u64()?,
                at: Timestamp::from_micros(d.i64()?),
            },
            RESULT => {
                let token = d.u64()?;
                let started_at = Timestamp::from_micros(d.i64()?);
                let duration_us = d.u64()?;
                let outcome = match d.u8()? {
                    0 => WireOutcome::Succeeded(d.str()?),
                    1 => {
                        let intent = match (d.u8()?, d.u64()?) {
                            (0, _) => ErrorIntent::Retryable,
                            (1, _) => ErrorIntent::Permanent,
                            (2, ms) => {
                                ErrorIntent::RetryAfter(std::time::Duration::from_millis(ms))
                            }
                            (k, _) => {
                                return Err(ProtocolError(format!("unknown error intent {k}")))
                            }
                        };
                        let message = d.str()?;
                        let detail = Some(d.str()?).filter(|s| !s.is_empty());
                        WireOutcome::Failed {
                            intent,
                            message,
                            detail,
                        }
                    }
                    2 => WireOutcome::Panicked(d.str()?),
                    k => return Err(ProtocolError(format!("unknown outcome kind {k}"))),
                };
                FromWorker::Result(WireResult {
                    token,
                    started_at,
                    duration_us,
                    outcome,
                })
            }
            other => {
                return Err(ProtocolError(format!(
                    "unknown frame kind {other} from a worker"
                )))
            }
        };
        d.done()?;
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
            return Err(ProtocolError(format!("a frame of impossible length {len}")));
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

    /// The next message from a worker, if a whole one has arrived.
    pub(crate) fn next_from_worker(&mut self) -> Result<Option<FromWorker>, ProtocolError> {
        match self.next_raw()? {
            Some((kind, body)) => FromWorker::decode(kind, body).map(Some),
            None => Ok(None),
        }
    }

    /// The next message from the engine, if a whole one has arrived.
    pub(crate) fn next_to_worker(&mut self) -> Result<Option<ToWorker>, ProtocolError> {
        match self.next_raw()? {
            Some((kind, body)) => ToWorker::decode(kind, body).map(Some),
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

    fn roundtrip_to(m: ToWorker) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = FrameReader::default();
        r.fill(&mut &buf[..]).unwrap();
        assert_eq!(r.next_to_worker().unwrap(), Some(m));
        assert_eq!(r.next_to_worker().unwrap(), None);
    }

    fn roundtrip_from(m: FromWorker) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let mut r = FrameReader::default();
        r.fill(&mut &buf[..]).unwrap();
        assert_eq!(r.next_from_worker().unwrap(), Some(m));
    }

    #[test]
    fn every_message_round_trips() {
        roundtrip_to(ToWorker::Setup {
            version: VERSION,
            tasks: vec!["cpu".into(), "ünïcode".into()],
            report_starts: true,
        });
        roundtrip_to(ToWorker::Batch(vec![
            WireAttempt {
                token: 1 << 40,
                task: 3,
                job: JobId(9),
                attempt: 2,
                params: r#"{"n":5}"#.into(),
            },
            WireAttempt {
                token: 2,
                task: 0,
                job: JobId(10),
                attempt: 1,
                params: "{}".into(),
            },
        ]));
        roundtrip_to(ToWorker::Shutdown);
        roundtrip_from(FromWorker::Hello {
            version: 1,
            pid: 42,
        });
        roundtrip_from(FromWorker::Started {
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
            roundtrip_from(FromWorker::Result(WireResult {
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
            FromWorker::Hello { version: i, pid: i }.encode(&mut buf);
        }
        let mut r = FrameReader::default();
        let mut got = 0;
        for chunk in buf.chunks(7) {
            r.fill(&mut &chunk[..]).unwrap();
            while let Some(FromWorker::Hello { version, .. }) = r.next_from_worker().unwrap() {
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
            .next_from_worker()
            .unwrap_err()
            .to_string()
            .contains("impossible length"));
        let mut r = FrameReader::default();
        r.fill(&mut &[2, 0, 0, 0, 99, 0][..]).unwrap();
        assert!(r
            .next_from_worker()
            .unwrap_err()
            .to_string()
            .contains("unknown frame kind 99"));
        let mut r = FrameReader::default();
        r.fill(&mut &[3, 0, 0, 0, HELLO, 1, 0][..]).unwrap();
        assert!(r
            .next_from_worker()
            .unwrap_err()
            .to_string()
            .contains("ended"));
    }
}
