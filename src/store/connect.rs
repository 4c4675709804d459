//! Connecting: the backend comes from the URL's scheme, and start-up waits for a database that
//! is not up yet (a container started before its database, the usual compose or Kubernetes
//! order) instead of exiting at once.

use super::{PgStore, SqliteStore, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first pause after a failed attempt; each later pause doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between attempts: a database that comes up is used within two seconds.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// At most one "still waiting" log line this often, however many attempts fail.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Connects to the backend named by the URL's scheme, once; SQLite creates its file and folder.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Whether `url` names a SQLite file that does not exist yet (so no process serves it, and
/// connecting would create it).
pub fn sqlite_file_missing(url: &str) -> bool {
    use std::str::FromStr;
    url.starts_with("sqlite:")
        && sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .is_ok_and(|options| !options.get_filename().exists())
}

/// As [`connect`], retrying for up to `wait` while the database is only unavailable
/// ([`StoreError::is_unavailable`]: unreachable, starting, or its database not created yet),
/// with pauses of 250 ms doubling to 2 s. Anything else (a refused password, a bad URL, a
/// SQLite file that cannot be opened) fails at once. `wait` zero means one attempt.
pub async fn connect_waiting(
    url: &str,
    max_connections: u32,
    wait: Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    let started = Instant::now();
    let mut pauses = Pauses::default();
    let mut attempts: u32 = 0;
    let mut last_log: Option<Instant> = None;
    loop {
        attempts += 1;
        let error = match connect(url, max_connections).await {
            Ok(store) => {
                if attempts > 1 {
                    tracing::info!(
                        attempts,
                        waited_s = started.elapsed().as_secs(),
                        url = %redact_url(url),
                        "database reachable; starting"
                    );
                }
                return Ok(store);
            }
            Err(StoreError::Connect(error)) if error.is_unavailable() => error,
            Err(other) => return Err(other),
        };
        let remaining = wait.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            let mut error = error;
            error.attempts = attempts;
            error.waited = started.elapsed();
            return Err(StoreError::Connect(error));
        }
        if last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                attempt = attempts,
                url = %error.url,
                cause = %error.reason(),
                "database not reachable yet; retrying until database.connect_timeout ({}s) has passed",
                wait.as_secs()
            );
            last_log = Some(Instant::now());
        }
        tokio::time::sleep(pauses.next_pause().min(remaining)).await;
    }
}

/// The URL with any password replaced, fit for an error message or a log line.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// Exponential backoff between connection attempts: 250 ms, 500 ms, 1 s, 2 s, 2 s, …
struct Pauses {
    next: Duration,
}

impl Default for Pauses {
    fn default() -> Self {
        Self { next: FIRST_PAUSE }
    }
}

impl Pauses {
    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(MAX_PAUSE);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_a_quarter_second_up_to_two_seconds() {
        // Arrange
        let mut pauses = Pauses::default();

        // Act
        let first: Vec<u64> = (0..6)
            .map(|_| pauses.next_pause().as_millis() as u64)
            .collect();

        // Assert
        assert_eq!(first, [250, 500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn a_password_in_the_url_is_masked() {
        // Arrange
        let url = "postgres://gg:hunter2@db:5432/gg";

        // Act
        let shown = redact_url(url);

        // Assert
        assert_eq!(shown, "postgres://gg:***@db:5432/gg");
    }
}
