//! The job's append-only log (`output.log`), fed by lab `log` calls, the
//! guest's stdout/stderr and the host, with the per-job log-size limit.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::broadcast;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::events::{JobEvent, LogSource};

/// Longest line kept from stdout/stderr before it is split.
const MAX_LINE: usize = 64 << 10;
/// Longest single log message kept; the rest is cut with a note.
const MAX_MESSAGE: usize = 64 << 10;

fn clip_message(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE {
        return message.into();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes cut)",
        &message[..end],
        message.len() - end
    )
    .into()
}

pub struct JobLog {
    out: BufWriter<File>,
    written: u64,
    limit: u64,
    truncated: bool,
    events: broadcast::Sender<JobEvent>,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
    /// Secret values never written: every line is redacted.
    secrets: crate::secrets::Secrets,
}

/// Shared handle: the lab `log` interface and the stdio streams write here.
pub type SharedLog = Arc<Mutex<JobLog>>;

impl JobLog {
    pub fn create(
        path: &Path,
        limit: u64,
        events: broadcast::Sender<JobEvent>,
    ) -> std::io::Result<SharedLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(Mutex::new(JobLog {
            out: BufWriter::with_capacity(64 << 10, file),
            written: 0,
            limit,
            truncated: false,
            events,
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
            secrets: Default::default(),
        })))
    }

    /// Redact these secrets from every later line.
    pub fn set_secrets(&mut self, secrets: crate::secrets::Secrets) {
        self.secrets = secrets;
    }

    /// Append one message (may span lines) and publish it as an event.
    /// Messages longer than [`MAX_MESSAGE`] are cut. Once the log limit is
    /// reached, guest lines are dropped after one marker; the host's own
    /// lines (few, bounded by the job's other limits) are always kept so the
    /// log still says how the job ended.
    pub fn line(&mut self, source: LogSource, message: &str) {
        let is_host = source == LogSource::Host;
        if self.truncated && !is_host {
            return;
        }
        let redacted = self.secrets.redact(message);
        let message = clip_message(&redacted);
        let ts = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        // Checked before formatting: a huge message must not make the host
        // allocate several times its size only to drop it.
        let newlines = message.bytes().filter(|&b| b == b'\n').count() as u64;
        let projected = 32 + message.len() as u64 + 25 * newlines;
        if !is_host && self.written + projected > self.limit {
            self.truncated = true;
            let marker = format!(
                "log truncated: the log limit of {} was reached; later lines are dropped",
                crate::units::human_bytes(self.limit)
            );
            let text = format!("{ts} {:<6} {marker}\n", LogSource::Host.tag());
            let _ = self.out.write_all(text.as_bytes());
            self.written += text.len() as u64;
            let _ = self.events.send(JobEvent::Log {
                source: LogSource::Host,
                message: marker,
            });
            return;
        }
        let text = format!(
            "{ts} {:<6} {}\n",
            source.tag(),
            message.replace('\n', "\n                         ")
        );
        let _ = self.out.write_all(text.as_bytes());
        self.written += text.len() as u64;
        let _ = self.events.send(JobEvent::Log {
            source,
            message: message.into_owned(),
        });
    }

    /// Feed raw stdout/stderr bytes; complete lines are logged.
    fn stdio(&mut self, source: LogSource, bytes: &[u8]) {
        let mut buf = std::mem::take(match source {
            LogSource::Stderr => &mut self.partial_stderr,
            _ => &mut self.partial_stdout,
        });
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let mut line = &buf[start..start + pos];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.stdio_line(source, line);
            start += pos + 1;
        }
        buf.drain(..start);
        // An unterminated line longer than MAX_LINE is logged in pieces now.
        if buf.len() > MAX_LINE {
            let keep = buf.len() % MAX_LINE;
            let cut = buf.len() - keep;
            self.stdio_line(source, &buf[..cut]);
            buf.drain(..cut);
        }
        *match source {
            LogSource::Stderr => &mut self.partial_stderr,
            _ => &mut self.partial_stdout,
        } = buf;
    }

    /// Log one stdout/stderr line; a line longer than [`MAX_LINE`] is
    /// logged in pieces of at most that many bytes (split at a character
    /// boundary), never cut short.
    fn stdio_line(&mut self, source: LogSource, mut bytes: &[u8]) {
        loop {
            let mut end = bytes.len().min(MAX_LINE);
            if end < bytes.len() {
                // Back up to a UTF-8 character start (at most 3 bytes).
                while end > MAX_LINE - 3 && (bytes[end] & 0xC0) == 0x80 {
                    end -= 1;
                }
            }
            self.line(source, &String::from_utf8_lossy(&bytes[..end]));
            bytes = &bytes[end..];
            if bytes.is_empty() {
                return;
            }
        }
    }

    /// Log unterminated stdout/stderr text and flush to disk.
    pub fn finish_stdio(&mut self) {
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let buf = std::mem::take(match source {
                LogSource::Stderr => &mut self.partial_stderr,
                _ => &mut self.partial_stdout,
            });
            if !buf.is_empty() {
                self.line(source, &String::from_utf8_lossy(&buf));
            }
        }
        self.flush();
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// The guest's stdout or stderr, feeding the job log.
#[derive(Clone)]
pub struct GuestStdio {
    log: SharedLog,
    source: LogSource,
}

impl GuestStdio {
    pub fn new(log: SharedLog, source: LogSource) -> Self {
        GuestStdio { log, source }
    }
}

impl IsTerminal for GuestStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStdio {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStdio {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log
            .lock()
            .map_err(|_| StreamError::Closed)?
            .stdio(self.source, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for GuestStdio {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Ok(mut log) = self.log.lock() {
            log.stdio(self.source, buf);
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
