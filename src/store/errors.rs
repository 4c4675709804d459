//! The store's error type, driver errors mapped once into it (shared by both backends), and
//! the one message an admin sees when the database cannot be connected to.

use std::fmt;
use std::time::Duration;

/// What can go wrong talking to the database; callers map it to `server_error` or a 503.
///
/// Each variant writes its cause into its own message and does not also expose it as
/// `source()`, so a rendered chain shows every cause once (see `crate::report`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "database.url ({0}) names no supported database: write sqlite://PATH or postgres://user:password@host/dbname"
    )]
    UnsupportedUrl(String),
    /// The database could not be connected to (at start-up or by an admin command).
    #[error("{0}")]
    Connect(ConnectError),
    /// A unique constraint refused the write (e.g. a duplicate primary key).
    #[error("conflicting record: {0}")]
    Conflict(String),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(sqlx::migrate::MigrateError),
    /// Anything else the driver reports (connection lost, I/O, bad SQL).
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    /// What SQLite reported for a statement run on the calling thread (`direct.rs`).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// Work handed to a blocking thread ended without an answer (it panicked, or the process
    /// is stopping).
    #[error("database work on a blocking thread ended without an answer: {0}")]
    Abandoned(String),
    /// A stored value does not read back as its type (an id, scopes, a PKCE value): the row
    /// was written by something other than guildgate, or damaged. Never read as empty.
    #[error("{0}")]
    Unreadable(Unreadable),
    /// Creating the SQLite file's folder failed.
    #[error(
        "cannot create the database folder {path} (database.url): {cause}; create it, or point database.url at a writable place"
    )]
    Folder {
        /// The folder that could not be created.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
}

/// A stored value that does not read back as the type its column holds. It names the table,
/// the column and what was expected, never the value (which may be anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The table read.
    pub table: &'static str,
    /// The column whose value did not parse.
    pub column: &'static str,
    /// What the column should hold, e.g. "a Discord id".
    pub expected: &'static str,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            table,
            column,
            expected,
        } = self;
        write!(f, "{table}.{column} holds a value that is not {expected}")
    }
}

impl std::error::Error for Unreadable {}

/// A unique or primary-key violation means the caller tried to write something that exists
/// (a reused id, or a grant a code replay already claimed); a value row decoding refused is
/// [`Unreadable`]; everything else is the backend's.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::ColumnDecode { source, .. } = &error {
            if let Some(unreadable) = source.downcast_ref::<Unreadable>() {
                return StoreError::Unreadable(unreadable.clone());
            }
        }
        match &error {
            // The driver's message names the constraint but never the values, so it is safe to
            // carry; Postgres puts the offending key only in `detail`, which we do not copy.
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Backend(error),
        }
    }
}

/// The same mapping for statements run through rusqlite (`direct.rs`): SQLite's unique and
/// primary-key violations are [`StoreError::Conflict`] (the message names the constraint's
/// columns, never values).
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        /// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE (extended result codes).
        const KEY_TAKEN: [std::ffi::c_int; 2] = [1555, 2067];
        match &error {
            rusqlite::Error::SqliteFailure(failure, message)
                if KEY_TAKEN.contains(&failure.extended_code) =>
            {
                StoreError::Conflict(message.clone().unwrap_or_else(|| failure.to_string()))
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

/// Written by hand rather than with `#[from]`: the message shows the cause, so exposing it as
/// `source()` too would print it twice.
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(error)
    }
}

impl StoreError {
    /// True when the database is only unavailable (down, starting, unreachable, not created
    /// yet): trying again later may work. The CLI exits 2 for these and 1 for the rest.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect(e) => e.is_unavailable(),
            StoreError::Backend(e) => matches!(
                failure_of(e),
                ConnectFailure::Unreachable | ConnectFailure::NoDatabase
            ),
            _ => false,
        }
    }
}

impl StoreError {
    /// True when the same request may succeed later without anyone changing it: the database is
    /// unavailable ([`is_unavailable`](Self::is_unavailable)), its connection was lost or it is
    /// shutting down, or (SQLite) its disk is full, the file cannot be written or stays locked.
    /// Requests answer these `temporarily_unavailable` (503) rather than `server_error`.
    pub fn is_temporary(&self) -> bool {
        if self.is_unavailable() {
            return true;
        }
        if let StoreError::Sqlite(error) = self {
            use rusqlite::ErrorCode::*;
            return matches!(
                error.sqlite_error_code(),
                Some(DatabaseBusy | DatabaseLocked | ReadOnly | SystemIoFailure | DiskFull)
            );
        }
        let StoreError::Backend(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // Extended result codes; the low byte is the primary code: SQLITE_BUSY 5,
                    // SQLITE_LOCKED 6, SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13.
                    let primary = db
                        .code()
                        .and_then(|c| c.parse::<i64>().ok())
                        .map(|c| c & 0xff);
                    return matches!(primary, Some(5 | 6 | 8 | 10 | 13));
                }
                // Postgres class 08 (connection exception), 57P01-57P03 (shutting down,
                // crashed, starting), 53300 (too many connections).
                db.code().is_some_and(|c| {
                    c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
                })
            }
            _ => false,
        }
    }
}

/// What a failed connection attempt means for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing answers, or the server is starting or full: may heal by itself, retried.
    Unreachable,
    /// The server answers but the named database does not exist (Postgres 3D000). Retried:
    /// a compose or Kubernetes init job often creates it moments after the server is up.
    NoDatabase,
    /// The server refused the user or password (Postgres 28P01, 28000). Not retried: waiting
    /// does not fix a wrong password, and repeated failed logins alarm database admins.
    Credentials,
    /// `database.url` itself cannot be used (syntax, unknown option).
    BadUrl,
    /// Anything else (TLS, protocol, a SQLite file that cannot be opened). Not retried.
    Other,
}

/// Postgres SQLSTATE codes (Appendix A of the Postgres manual) that decide a retry.
fn failure_of(error: &sqlx::Error) -> ConnectFailure {
    match error {
        sqlx::Error::Configuration(_) => ConnectFailure::BadUrl,
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            ConnectFailure::Other
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => ConnectFailure::Unreachable,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01" | "28000") => ConnectFailure::Credentials,
            // invalid_catalog_name
            Some("3D000") => ConnectFailure::NoDatabase,
            // cannot_connect_now (starting up or shutting down), too_many_connections
            Some("57P03" | "53300") => ConnectFailure::Unreachable,
            _ => ConnectFailure::Other,
        },
        _ => ConnectFailure::Other,
    }
}

/// The database named by `database.url` could not be connected to. The message names the URL
/// (password masked), the driver's reason and what to check, in one line.
#[derive(Debug)]
pub struct ConnectError {
    /// `database.url` with its password replaced by `***`.
    pub url: String,
    /// Connection attempts made (more than one when start-up waited for the database).
    pub attempts: u32,
    /// Time from the first attempt to giving up.
    pub waited: Duration,
    /// Why the last attempt failed.
    pub cause: sqlx::Error,
}

impl ConnectError {
    /// One failed attempt at `url` (given unredacted; only the masked form is kept).
    pub(crate) fn new(url: &str, cause: sqlx::Error) -> Self {
        Self {
            url: super::redact_url(url),
            attempts: 1,
            waited: Duration::ZERO,
            cause,
        }
    }

    /// What the failure means.
    pub fn failure(&self) -> ConnectFailure {
        if self.is_sqlite() {
            // A file that cannot be opened stays so; no server is on its way.
            return match failure_of(&self.cause) {
                ConnectFailure::BadUrl => ConnectFailure::BadUrl,
                _ => ConnectFailure::Other,
            };
        }
        failure_of(&self.cause)
    }

    /// True when waiting may help (see [`ConnectFailure`] for which failures those are).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.failure(),
            ConnectFailure::Unreachable | ConnectFailure::NoDatabase
        )
    }

    /// The driver's reason for the last failure, in words an admin can use.
    pub fn reason(&self) -> String {
        reason(&self.cause)
    }

    fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// `, gave up after 5 attempts in 30.1s (database.connect_timeout)` once start-up retried.
    fn retried(&self) -> String {
        if self.attempts > 1 {
            format!(
                ", gave up after {} attempts in {:.1}s (database.connect_timeout)",
                self.attempts,
                self.waited.as_secs_f64()
            )
        } else {
            String::new()
        }
    }
}

/// The driver's reason without its repetitions: sqlx prefixes a configuration error's own
/// "error with configuration" with another, and appends Postgres' internal source line
/// ("at line 768") to a server error, which means nothing to an admin.
fn reason(cause: &sqlx::Error) -> String {
    match cause {
        sqlx::Error::Configuration(inner) => inner.to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (url, cause, retried) = (&self.url, reason(&self.cause), self.retried());
        match self.failure() {
            ConnectFailure::Unreachable => write!(
                f,
                "cannot reach the database at {url} (database.url){retried}: {cause}. \
                 Check that the database server is running and accepts connections at that \
                 host and port; if it starts slowly, raise database.connect_timeout"
            ),
            ConnectFailure::NoDatabase => write!(
                f,
                "the database named in {url} (database.url) does not exist{retried}: {cause}. \
                 Create it (e.g. `createdb`) or correct the name at the end of database.url"
            ),
            ConnectFailure::Credentials => write!(
                f,
                "the database at {url} (database.url) refused the login: {cause}. \
                 Check the user and password in database.url (prefer setting it with \
                 GUILDGATE__DATABASE__URL); a refused login is not retried"
            ),
            ConnectFailure::BadUrl => write!(
                f,
                "database.url ({url}) cannot be used: {cause}. Write it as \
                 postgres://user:password@host:5432/dbname or sqlite://path/to/guildgate.db"
            ),
            ConnectFailure::Other if self.is_sqlite() => write!(
                f,
                "cannot open the SQLite database {url} (database.url): {cause}. Check that \
                 guildgate's user may create and write that file and its folder"
            ),
            ConnectFailure::Other => write!(
                f,
                "cannot connect to the database at {url} (database.url){retried}: {cause}"
            ),
        }
    }
}

/// The message already carries the driver's reason, so no `source()` (it would print twice).
impl std::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    #[test]
    fn a_refused_connection_names_the_masked_url_and_what_to_check() {
        // Arrange
        let error = ConnectError::new("postgres://gg:hunter2@db.internal:5432/gg", refused());

        // Act
        let message = error.to_string();

        // Assert
        assert!(error.is_unavailable());
        assert!(
            message.contains("postgres://gg:***@db.internal:5432/gg"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("database.connect_timeout"), "{message}");
        assert!(!message.contains("gave up"), "one attempt: {message}");
    }

    #[test]
    fn a_retried_connection_says_how_long_it_waited() {
        // Arrange
        let mut error = ConnectError::new("postgres://gg@127.0.0.1:1/gg", refused());
        error.attempts = 7;
        error.waited = Duration::from_millis(30_040);

        // Act
        let message = error.to_string();

        // Assert
        assert!(
            message.contains("gave up after 7 attempts in 30.0s"),
            "{message}"
        );
    }

    #[test]
    fn a_sqlite_file_that_cannot_be_opened_is_not_waited_for() {
        // Arrange
        let error = ConnectError::new("sqlite:///nope/guildgate.db", refused());

        // Act
        let unavailable = error.is_unavailable();

        // Assert
        assert!(!unavailable);
        assert!(error.to_string().contains("SQLite"), "{error}");
    }
}
