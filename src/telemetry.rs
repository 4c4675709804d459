//! Logging: tracing-subscriber, human-readable at a terminal or JSON for collectors, and the
//! request span, whose target never carries a query value (codes, states, hints, tokens).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Output shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for people, coloured only where they go to a terminal (see [`init`]).
    Pretty,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `"json"` → Json; anything else (validated earlier) → Pretty.
    pub fn from_config(value: &str) -> Self {
        if value == "json" {
            Self::Json
        } else {
            Self::Pretty
        }
    }
}

/// Whether the readable format may colour its lines: ANSI escape sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Colours, for a terminal.
    On,
    /// Plain text: a file, journald, a container log, a pipe. Escape sequences there wrap every
    /// field name (`\x1b[3mevent\x1b[0m\x1b[2m=\x1b[0m`), so `grep event=sign_in` and log
    /// shippers miss them.
    Off,
}

impl Colour {
    /// [`Colour::On`] only when standard error is a terminal and `NO_COLOR` is not set
    /// (<https://no-color.org>).
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if std::io::stderr().is_terminal() && !no_color {
            Self::On
        } else {
            Self::Off
        }
    }
}

/// The subscriber [`init`] installs; `RUST_LOG`, when set, wins over `level`.
pub fn subscriber<W>(
    level: &str,
    format: LogFormat,
    colour: Colour,
    sink: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour == Colour::On)
        .with_writer(sink);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.with_target(false).finish()),
    }
}

/// Installs the global subscriber (and the `log` bridge); returns whether it was installed.
/// Calling it twice is harmless (the second call is ignored), which tests rely on. `colour`
/// is [`Colour::for_stderr`] for the command line.
pub fn init<W>(level: &str, format: LogFormat, colour: Colour, sink: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // Err only means a subscriber is already installed.
    subscriber(level, format, colour, sink).try_init().is_ok()
}

/// Runs CPU-heavy work (argon2, RSA key generation) off the async threads, keeping the span.
pub async fn spawn_blocking_with_tracing<F, R>(f: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}

/// What replaces every query value in logs.
const REDACTED: &str = "[redacted]";
/// Paths longer than this are cut in logs (scanners send very long ones).
const MAX_LOGGED_PATH: usize = 256;
/// Parameter names longer than this are not kept (a token sent as a bare name is still a token).
const MAX_LOGGED_NAME: usize = 40;

/// The request target as logged: the path, then each query parameter's name with its value
/// replaced by `[redacted]` (`/callback/discord?code=[redacted]&state=[redacted]`).
///
/// Query values are where codes, states, `id_token_hint`s and misplaced bearer tokens travel, so
/// none is ever logged. Names are kept when they look like protocol parameter names (lowercase
/// letters, digits and `_`, at most 40 bytes); anything else (a token sent as a bare name, say)
/// is redacted too.
pub fn redact_target(path: &str, query: &str) -> String {
    let mut target = String::with_capacity(path.len().min(MAX_LOGGED_PATH) + query.len().min(256));
    if path.len() > MAX_LOGGED_PATH {
        let mut end = MAX_LOGGED_PATH;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        target.push_str(&path[..end]);
        target.push_str("...");
    } else {
        target.push_str(path);
    }
    let mut separator = '?';
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        target.push(separator);
        separator = '&';
        let (name, value) = match piece.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (piece, None),
        };
        let plain_name = name.len() <= MAX_LOGGED_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        target.push_str(if plain_name { name } else { REDACTED });
        match value {
            Some("") => target.push('='),
            Some(_) => {
                target.push('=');
                target.push_str(REDACTED);
            }
            None => {}
        }
    }
    target
}

/// The root span of every request (tracing-actix-web): method, route, redacted target, client,
/// request id, then status and the error's public text. Unlike the default builder it never
/// records the raw query, and records an error by its `Display` only (never its `Debug`, which
/// may hold internal causes).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Below `info` (`[log] level = "warn"`, say) the span would be disabled: skip building
        // its fields, which cost allocations on every request.
        if !tracing::enabled!(tracing::Level::INFO) {
            return Span::none();
        }
        let route = request.match_pattern();
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        // The same address the limits count (forwarding headers only from trusted proxies).
        let client_ip = crate::client_ip::resolve(
            request.peer_addr(),
            request.headers(),
            request.app_data::<crate::client_ip::TrustedProxies>(),
        );
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = route.as_deref().unwrap_or("default"),
            http.target = %redact_target(request.path(), request.query_string()),
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            http.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (
                response.status(),
                response.response().error().map(ToString::to_string),
            ),
            Err(error) => (
                error.as_response_error().status_code(),
                Some(error.to_string()),
            ),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(message) = error {
            span.record("exception.message", message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink collecting what a subscriber writes.
    #[derive(Clone, Default)]
    struct Collected(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Collected {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One `event=sign_in` line in the readable format with `colour`.
    fn pretty_line(colour: Colour) -> String {
        let sink = Collected::default();
        let writer = sink.clone();
        let subscriber = subscriber("info", LogFormat::Pretty, colour, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(event = %"sign_in", user_id = %"1", "signed in with Discord");
        });
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_readable_format_colours_only_when_asked_to() {
        // Act
        let plain = pretty_line(Colour::Off);
        let coloured = pretty_line(Colour::On);

        // Assert
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        assert!(plain.contains("event=sign_in user_id=1"), "{plain:?}");
        assert!(
            coloured.contains('\u{1b}'),
            "a terminal gets colours: {coloured:?}"
        );
    }

    #[test]
    fn query_values_are_redacted_and_names_kept() {
        assert_eq!(
            redact_target(
                "/callback/discord",
                "code=abc123&state=xyz&iss=https%3A%2F%2Fx"
            ),
            "/callback/discord?code=[redacted]&state=[redacted]&iss=[redacted]"
        );
        assert_eq!(
            redact_target("/userinfo", "access_token=eyJhbGciOi.eyJzdWIi.sig"),
            "/userinfo?access_token=[redacted]"
        );
        assert_eq!(redact_target("/authorize", ""), "/authorize");
        assert_eq!(
            redact_target("/authorize", "prompt=&flag"),
            "/authorize?prompt=&flag"
        );
    }

    #[test]
    fn a_token_sent_as_a_bare_name_is_redacted_too() {
        let token = "k3J9-pQ_xY7zL2mN8vB4cR6tW1sD5fG0hJ3kE9uA2i";
        assert_eq!(
            redact_target("/userinfo", token),
            "/userinfo?[redacted]",
            "a name that does not look like a parameter name"
        );
        assert_eq!(
            redact_target("/userinfo", &format!("{token}=x")),
            "/userinfo?[redacted]=[redacted]"
        );
        let jwt_name = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert!(!redact_target("/logout", jwt_name).contains("eyJ"));
    }

    #[test]
    fn very_long_paths_are_cut() {
        let path = format!("/{}", "a".repeat(1000));
        let logged = redact_target(&path, "");
        assert!(logged.len() < 300, "{}", logged.len());
        assert!(logged.ends_with("..."));
        let wide = format!("/{}", "é".repeat(500));
        assert!(
            redact_target(&wide, "").len() < 300,
            "cut on a character boundary"
        );
    }
}
