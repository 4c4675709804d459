//! Exactly one process of a deployment holds the Gateway connection. On Postgres that is the
//! holder of a session-level advisory lock taken on a connection of its own: when the holder
//! dies, its connection closes and Postgres releases the lock, and a standby process that polls
//! takes over. With SQLite there is one process, which simply leads.

use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection;
use std::time::Duration;

/// The advisory lock's key: "guildgat" in ASCII, so it is recognisable in `pg_locks`.
const LOCK_KEY: i64 = 0x6775_696c_6467_6174;
/// How often a standby process tries to take over, and the holder checks its connection.
const POLL: Duration = Duration::from_secs(1);

/// Being the one process that holds the Gateway connection.
pub struct Leadership {
    /// The connection holding the advisory lock (Postgres only).
    connection: Option<sqlx::PgConnection>,
}

/// Waits until this process leads. Never fails: a database problem is logged and retried.
pub async fn acquire(database_url: &SecretString) -> Leadership {
    let url = database_url.expose_secret();
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return Leadership { connection: None };
    }
    let mut logged = false;
    // One connection for the polls too (reopened only after an error), not one per attempt.
    let mut connection: Option<sqlx::PgConnection> = None;
    loop {
        match try_lock(url, &mut connection).await {
            Ok(true) => {
                tracing::info!("this process holds the Discord Gateway connection");
                return Leadership { connection };
            }
            Ok(false) => {
                if !logged {
                    tracing::info!(
                        "another process holds the Discord Gateway connection; standing by"
                    );
                    logged = true;
                }
            }
            Err(e) => {
                connection = None;
                tracing::warn!(error = %e, "cannot try the Gateway leadership lock; retrying");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tries the lock on `connection` (opened first when there is none); true when now held.
async fn try_lock(
    url: &str,
    connection: &mut Option<sqlx::PgConnection>,
) -> Result<bool, sqlx::Error> {
    if connection.is_none() {
        *connection = Some(crate::store::connect_one_postgres(url).await?);
    }
    let Some(conn) = connection.as_mut() else {
        return Ok(false);
    };
    let (held,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(conn)
        .await?;
    Ok(held)
}

impl Leadership {
    /// Resolves when leadership is lost: the lock's connection stopped answering (the lock is
    /// then released by Postgres, or soon will be). Never resolves with SQLite.
    pub async fn lost(&mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(POLL).await;
            let ping = tokio::time::timeout(POLL * 5, connection.ping()).await;
            if !matches!(ping, Ok(Ok(()))) {
                tracing::warn!("lost the database connection holding the Gateway leadership");
                return;
            }
        }
    }
}
