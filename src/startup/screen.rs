//! Screens each HTTP/1 request head on its way to actix. A request line too long for actix to
//! read (about 64 KiB: the `http` crate's URI limit) or a head over actix's 128 KiB buffer gets
//! actix's empty 400 or 431; here it gets a readable answer instead (an HTML page for people,
//! OAuth2 JSON for apps, as the edge checks answer shorter over-long queries) and the connection
//! closes. Everything else passes through untouched: the screen only counts bytes, watching
//! line ends in heads and skipping `Content-Length` bodies; a chunked body ends the screening
//! of that connection (no endpoint takes one).

use crate::routes::{Audience, endpoint_at};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request line passed on: longer ones would fail actix's URI parse (65,534 bytes).
const MAX_LINE: usize = 60 * 1024;
/// Largest head passed on: actix answers 431 without a body at 128 KiB.
const MAX_HEAD: usize = 120 * 1024;
/// How much of the request line is kept to tell who asks (its path).
const KEEP_OF_LINE: usize = 512;
/// How much of a header line is kept to read `Content-Length` and `Transfer-Encoding`.
const KEEP_OF_HEADER: usize = 64;

/// A connection's stream, screened (see the module docs).
pub struct Screened<T> {
    io: T,
    state: State,
}

enum State {
    /// Reading a head.
    Head(Head),
    /// Skipping this many bytes of body.
    Body(u64),
    /// No more screening on this connection (a chunked body).
    Passthrough,
    /// Writing the refusal; then the connection reads as closed.
    Refusing { reply: Vec<u8>, written: usize },
    /// Refused and written.
    Closed,
}

#[derive(Default)]
struct Head {
    /// Bytes of the head so far.
    size: usize,
    /// Bytes of the current line so far.
    line: usize,
    /// Whether the current line is the request line.
    first: bool,
    /// The start of the request line, then of the current header line.
    kept: Vec<u8>,
    /// The request line's start, once the line is complete.
    request_line: Vec<u8>,
    /// The `Content-Length` read so far.
    content_length: u64,
    /// Whether a `Transfer-Encoding` was read.
    chunked: bool,
}

impl Head {
    fn new() -> Self {
        Self {
            first: true,
            ..Self::default()
        }
    }
}

/// What one byte did to the screen.
enum Step {
    Continue,
    /// The head ended; the body has this many bytes (or is chunked).
    HeadDone {
        body: u64,
        chunked: bool,
    },
    /// The request line or the head is too long: refuse with this status.
    Refuse(u16, Vec<u8>),
}

impl<T> Screened<T> {
    /// Screens `io` from its first byte (a new connection).
    pub fn new(io: T) -> Self {
        Self {
            io,
            state: State::Head(Head::new()),
        }
    }

    /// Runs the screen over bytes just read; returns how many of them to pass on.
    fn screen(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            match &mut self.state {
                State::Passthrough | State::Refusing { .. } | State::Closed => return bytes.len(),
                State::Body(remaining) => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len() - i);
                    *remaining -= take as u64;
                    i += take;
                    if *remaining == 0 {
                        self.state = State::Head(Head::new());
                    }
                }
                State::Head(head) => {
                    match head_byte(head, bytes[i]) {
                        Step::Continue => {}
                        Step::HeadDone { chunked: true, .. } => self.state = State::Passthrough,
                        Step::HeadDone { body: 0, .. } => self.state = State::Head(Head::new()),
                        Step::HeadDone { body, .. } => self.state = State::Body(body),
                        Step::Refuse(status, line) => {
                            self.state = State::Refusing {
                                reply: refusal(status, &line),
                                written: 0,
                            };
                            // Nothing of this read reaches actix.
                            return 0;
                        }
                    }
                    i += 1;
                }
            }
        }
        bytes.len()
    }
}

/// One byte of a head.
fn head_byte(head: &mut Head, byte: u8) -> Step {
    head.size += 1;
    if byte == b'\n' {
        let line = std::mem::take(&mut head.kept);
        let was_empty = head.line == 0 || (head.line == 1 && line.first() == Some(&b'\r'));
        if head.first {
            // RFC 9112 §2.2: empty lines before the request line are ignored (actix skips them
            // too), so the next line is still the request line.
            if !was_empty {
                head.first = false;
                head.request_line = line;
            }
        } else if was_empty {
            return Step::HeadDone {
                body: head.content_length,
                chunked: head.chunked,
            };
        } else {
            read_header(head, &line);
        }
        head.line = 0;
        return Step::Continue;
    }
    head.line += 1;
    let keep = if head.first {
        KEEP_OF_LINE
    } else {
        KEEP_OF_HEADER
    };
    if head.kept.len() < keep {
        head.kept.push(byte);
    }
    if head.first && head.line > MAX_LINE {
        return Step::Refuse(414, std::mem::take(&mut head.kept));
    }
    if head.size > MAX_HEAD {
        let line = if head.first {
            std::mem::take(&mut head.kept)
        } else {
            std::mem::take(&mut head.request_line)
        };
        return Step::Refuse(431, line);
    }
    Step::Continue
}

/// Notes `Content-Length` and `Transfer-Encoding` (case-insensitive names, RFC 9112 §6).
fn read_header(head: &mut Head, line: &[u8]) {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return;
    };
    let name = line[..colon].trim_ascii();
    let value = line[colon + 1..].trim_ascii();
    if name.eq_ignore_ascii_case(b"content-length") {
        if let Some(n) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
            head.content_length = n;
        }
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        head.chunked = true;
    }
}

/// The whole refusal, status line to body: JSON for an endpoint apps call, a page otherwise.
fn refusal(status: u16, request_line: &[u8]) -> Vec<u8> {
    let path = std::str::from_utf8(request_line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .map(|target| target.split('?').next().unwrap_or(target))
        .unwrap_or("/");
    let (reason, what) = match status {
        414 => ("URI Too Long", "the request line is longer than 60 KiB"),
        _ => (
            "Request Header Fields Too Large",
            "the request head is larger than 120 KiB",
        ),
    };
    let app = endpoint_at(path).is_some_and(|e| e.audience == Audience::App);
    let (content_type, policy, body) = if app {
        (
            "application/json",
            None,
            serde_json::json!({"error": "invalid_request", "error_description": what}).to_string(),
        )
    } else {
        let pages = crate::pages::Pages::built_in();
        (
            "text/html; charset=utf-8",
            Some(pages.content_security_policy().to_owned()),
            crate::pages::message_page(
                "This request cannot be read",
                "The link or form that brought you here carries more data than this service accepts. Go back to the app and try again; if it keeps happening, tell the app's administrator.",
            ),
        )
    };
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n",
        body.len()
    );
    if let Some(policy) = policy {
        reply.push_str(&format!(
            "content-security-policy: {policy}\r\nx-frame-options: DENY\r\n"
        ));
    }
    reply.push_str("\r\n");
    reply.push_str(&body);
    reply.into_bytes()
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Screened<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Closed => return Poll::Ready(Ok(())),
                State::Refusing { reply, written } => {
                    while *written < reply.len() {
                        match Pin::new(&mut this.io).poll_write(cx, &reply[*written..]) {
                            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                            Poll::Ready(Ok(n)) => *written += n,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    let _ = Pin::new(&mut this.io).poll_flush(cx);
                    this.state = State::Closed;
                    // Reads as the end of the stream: actix closes the connection.
                    return Poll::Ready(Ok(()));
                }
                _ => {}
            }
            let before = buf.filled().len();
            match Pin::new(&mut this.io).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {
                    let passed = this.screen(&buf.filled()[before..]);
                    let read = buf.filled().len() - before;
                    if passed < read {
                        buf.set_filled(before + passed);
                        // The refusal is written on the next turn of this loop.
                        continue;
                    }
                    return Poll::Ready(Ok(()));
                }
                other => return other,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Screened<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
