//! Logging: tracing-subscriber, human-readable at a terminal or JSON for collectors.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Output shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Coloured, multi-field lines for people.
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

/// Installs the global subscriber; `RUST_LOG`, when set, wins over `level`.
/// Calling it twice is harmless (the second call is ignored), which tests rely on.
pub fn init<W>(level: &str, format: LogFormat, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
    };
    // Err only means a subscriber is already installed.
    let _ = result;
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
