//! Screens each HTTP/1 request head on its way to actix. A request line too long for actix to
//! read (about 64 KiB: the `http` crate's URI limit) or a head over actix's 128 KiB buffer gets
//! actix's empty 400 or 431; here it gets a readable answer instead (an HTML page for people,
//! OAuth2 JSON for apps, as the edge checks answer shorter over-long queries) and the connection
//! closes. Everything else passes through untouched: the screen only counts bytes, watching
//! line ends in heads and skipping `Content-Length` bodies; a chunked body ends the screening
//! of that connection (no endpoint takes one). A refusal is counted under its route, as the
//! edge's are, and carries the headers every answer carries (`Strict-Transport-Security` on an
//! https issuer included).

use crate::routes::{Audience, endpoint_at, route_label};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
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

/// What a refusal needs from the server: fixed at start-up, shared by every connection.
#[derive(Clone, Debug, Default)]
pub struct Answering {
    /// Whether the issuer is https (`Strict-Transport-Security`).
    pub https: bool,
    /// Where refusals are counted; none in unit tests.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// A connection's stream, screened (see the module docs).
pub struct Screened<T> {
    io: T,
    state: State,
    /// The head being read (kept beside the state, reset for each request).
    head: Head,
    answering: Answering,
}

enum State {
    /// Reading a head.
    Head,
    /// Skipping this many bytes of body.
    Body(u64),
    /// No more screening on this connection (a chunked body).
    Passthrough,
    /// Writing the refusal; then the connection reads as closed.
    Refusing { reply: Vec<u8>, written: usize },
    /// Refused and written.
    Closed,
}

struct Head {
    /// Bytes of the head so far.
    size: usize,
    /// Bytes of the current line so far (without its line feed).
    line: usize,
    /// Whether the current line is the request line.
    first: bool,
    /// The start of the request line.
    request_line: [u8; KEEP_OF_LINE],
    request_kept: usize,
    /// The start of the current header line.
    header: [u8; KEEP_OF_HEADER],
    header_kept: usize,
    /// The `Content-Length` read so far.
    content_length: u64,
    /// Whether a `Transfer-Encoding` was read.
    chunked: bool,
}

impl Head {
    fn new() -> Self {
        Self {
            size: 0,
            line: 0,
            first: true,
            request_line: [0; KEEP_OF_LINE],
            request_kept: 0,
            header: [0; KEEP_OF_HEADER],
            header_kept: 0,
            content_length: 0,
            chunked: false,
        }
    }

    /// Ready for the next request's head.
    fn reset(&mut self) {
        self.size = 0;
        self.line = 0;
        self.first = true;
        self.request_kept = 0;
        self.header_kept = 0;
        self.content_length = 0;
        self.chunked = false;
    }

    /// The kept start of the request line.
    fn request_line(&self) -> &[u8] {
        &self.request_line[..self.request_kept]
    }

    /// Part of a line (no line feed in it).
    fn absorb(&mut self, part: &[u8]) {
        self.size += part.len();
        self.line += part.len();
        let (kept, len) = if self.first {
            (&mut self.request_line[..], &mut self.request_kept)
        } else {
            (&mut self.header[..], &mut self.header_kept)
        };
        let take = part.len().min(kept.len() - *len);
        kept[*len..*len + take].copy_from_slice(&part[..take]);
        *len += take;
    }

    /// The line feed that ends the current line.
    fn end_line(&mut self) -> Step {
        self.size += 1;
        let kept = if self.first {
            &self.request_line[..self.request_kept]
        } else {
            &self.header[..self.header_kept]
        };
        let empty = self.line == 0 || (self.line == 1 && kept == b"\r");
        let step = if self.first {
            if empty {
                // RFC 9112 §2.2: empty lines before the request line are ignored (actix skips
                // them too), so the next line is still the request line.
                self.request_kept = 0;
            } else {
                self.first = false;
            }
            Step::Continue
        } else if empty {
            Step::HeadDone {
                body: self.content_length,
                chunked: self.chunked,
            }
        } else {
            let kept = self.header_kept;
            let line = self.header;
            read_header(self, &line[..kept]);
            Step::Continue
        };
        self.line = 0;
        self.header_kept = 0;
        step
    }

    /// Whether the head has grown past what is passed on.
    fn too_long(&self) -> Option<u16> {
        if self.first && self.line > MAX_LINE {
            Some(414)
        } else if self.size > MAX_HEAD {
            Some(431)
        } else {
            None
        }
    }
}

/// What a part of a head did to the screen.
enum Step {
    Continue,
    /// The head ended; the body has this many bytes (or is chunked).
    HeadDone {
        body: u64,
        chunked: bool,
    },
}

impl<T> Screened<T> {
    /// Screens `io` from its first byte (a new connection).
    pub fn new(io: T, answering: Answering) -> Self {
        Self {
            io,
            state: State::Head,
            head: Head::new(),
            answering,
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
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    let head = &mut self.head;
                    let rest = &bytes[i..];
                    let (part, ends_line) = match memchr::memchr(b'\n', rest) {
                        Some(at) => (&rest[..at], true),
                        None => (rest, false),
                    };
                    head.absorb(part);
                    i += part.len();
                    if let Some(status) = head.too_long() {
                        let reply = refusal(status, head.request_line(), &self.answering);
                        self.state = State::Refusing { reply, written: 0 };
                        // Nothing of this read reaches actix.
                        return 0;
                    }
                    if !ends_line {
                        continue;
                    }
                    i += 1;
                    match head.end_line() {
                        Step::Continue => {}
                        Step::HeadDone { chunked: true, .. } => self.state = State::Passthrough,
                        Step::HeadDone { body, .. } => {
                            head.reset();
                            if body > 0 {
                                self.state = State::Body(body);
                            }
                        }
                    }
                }
            }
        }
        bytes.len()
    }
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

/// The whole refusal, status line to body: JSON for an endpoint apps call, a page otherwise;
/// counted under its route.
fn refusal(status: u16, request_line: &[u8], answering: &Answering) -> Vec<u8> {
    let path = std::str::from_utf8(request_line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .map(|target| target.split('?').next().unwrap_or(target))
        .unwrap_or("/");
    if let Some(metrics) = &answering.metrics {
        metrics.http_request(route_label(path), status, std::time::Duration::ZERO);
    }
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
    if answering.https {
        // As `routes/headers.rs` sends on every other answer.
        reply.push_str("strict-transport-security: max-age=63072000\r\n");
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
