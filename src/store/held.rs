//! SQLite connections kept open for the life of the process and lent out one use at a time.
//!
//! sqlx's pool pings a connection before lending it and again when it comes back: for SQLite
//! each ping is one more round trip to the connection's own thread, which doubled or tripled
//! the cost of a statement (measured: userinfo and the refresh grant spent most of their CPU in
//! those thread switches). A connection to a local file does not go stale, so these are never
//! pinged: a lease is a permit of the slots' gate ([`Gate`], `gate.rs`) and a free slot. [`Held`] is an
//! sqlx executor, so the shared SQL runs on it unchanged; [`WriteTx`] is the writer's
//! transaction.

use super::gate::{Gate, Permit};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{ConnectOptions, Either, Execute, Executor, Sqlite};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// A fixed set of SQLite connections, opened on first use and kept.
#[derive(Clone)]
pub(super) struct Held {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteConnectOptions,
    slots: Vec<Slot>,
    free: Gate,
    wait: Duration,
}

/// One connection (opened on first use), and whether a transaction was left open on it.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<SqliteConnection>>,
    /// A [`WriteTx`] was dropped before it committed: roll back before the next use.
    abandoned: AtomicBool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("size", &self.inner.slots.len())
            .field("free", &self.inner.free.available())
            .finish()
    }
}

impl Held {
    /// `size` connections to `options`, the first opened now (so a bad path fails at start-up).
    pub(super) async fn open(
        options: SqliteConnectOptions,
        size: usize,
        wait: Duration,
    ) -> Result<Self, sqlx::Error> {
        let held = Self::lazy(options, size, wait);
        drop(held.lease().await?);
        Ok(held)
    }

    /// `size` connections to `options`, each opened on its first use: for connections to a file
    /// another [`Held`] has already opened (each sqlx SQLite connection is a thread of its own,
    /// kept only if something uses it).
    pub(super) fn lazy(options: SqliteConnectOptions, size: usize, wait: Duration) -> Self {
        let size = size.max(1);
        Self {
            inner: Arc::new(Inner {
                options,
                slots: (0..size).map(|_| Slot::default()).collect(),
                free: Gate::new(size),
                wait,
            }),
        }
    }

    /// Connections open, and how many of all are lent out right now.
    pub(super) fn usage(&self) -> super::PoolUsage {
        let open = self
            .inner
            .slots
            .iter()
            .filter(|s| s.conn.try_lock().map_or(true, |c| c.is_some()))
            .count();
        let lent = self
            .inner
            .slots
            .len()
            .saturating_sub(self.inner.free.available());
        super::PoolUsage {
            size: u64::try_from(open).unwrap_or(u64::MAX),
            idle: u64::try_from(open.saturating_sub(lent)).unwrap_or(0),
        }
    }

    /// A connection for one use; waits at most the configured time (see [`Gate`]).
    pub(super) async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.inner.wait, self.inner.free.take())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        // Holding a permit guarantees a free slot: there are as many permits as slots.
        let (slot, mut conn) = self
            .inner
            .slots
            .iter()
            .find_map(|s| s.conn.try_lock().ok().map(|c| (s, c)))
            .ok_or(sqlx::Error::PoolClosed)?;
        if conn.is_none() {
            *conn = Some(self.inner.options.connect().await?);
        }
        let mut conn =
            MutexGuard::try_map(conn, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)?;
        if slot.abandoned.swap(false, Ordering::AcqRel)
            && let Err(error) = conn.execute("ROLLBACK").await
        {
            // SQLite may already have rolled back (a full disk does): nothing was open.
            tracing::debug!(%error, "no open transaction to roll back");
        }
        Ok(Lease {
            conn,
            abandoned: &slot.abandoned,
            _permit: permit,
        })
    }

    /// How the connections are opened.
    pub(super) fn options(&self) -> &SqliteConnectOptions {
        &self.inner.options
    }

    /// A writing transaction: `BEGIN IMMEDIATE` takes the file's write lock up front.
    pub(super) async fn begin(&self, begin: &'static str) -> Result<WriteTx<'_>, sqlx::Error> {
        let mut lease = self.lease().await?;
        lease.execute(begin).await?;
        Ok(WriteTx { lease, open: true })
    }
}

/// A lent connection; back in its slot when dropped.
pub(super) struct Lease<'a> {
    conn: MappedMutexGuard<'a, SqliteConnection>,
    abandoned: &'a AtomicBool,
    // Dropped after `conn`: the slot is free before the permit says so.
    _permit: Permit<'a>,
}

impl Lease<'_> {
    /// Marks the connection as holding a transaction its user did not end.
    fn abandon(&mut self) {
        self.abandoned.store(true, Ordering::Release);
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// A transaction on the writer; rolled back before the connection's next use unless committed.
pub(super) struct WriteTx<'a> {
    lease: Lease<'a>,
    open: bool,
}

impl WriteTx<'_> {
    /// Commits; on failure the connection is rolled back before its next use.
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.lease.execute("COMMIT").await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            self.lease.abandon();
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.lease
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.lease
    }
}

/// Runs a statement on a lent connection, as sqlx's pool does on one of its own.
impl<'p> Executor<'p> for &'_ Held {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Sqlite>,
    {
        let held = self.clone();
        // Results are collected while the connection is lent: ours are a handful of rows.
        let all = async move {
            let mut lease = match held.lease().await {
                Ok(lease) => lease,
                Err(error) => return vec![Err(error)],
            };
            lease.fetch_many(query).collect::<Vec<_>>().await
        };
        Box::pin(futures_util::stream::once(all).flat_map(futures_util::stream::iter))
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Sqlite>,
    {
        let held = self.clone();
        Box::pin(async move { held.lease().await?.fetch_optional(query).await })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let held = self.clone();
        Box::pin(async move { held.lease().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>> {
        let held = self.clone();
        Box::pin(async move { held.lease().await?.describe(sql).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    async fn held(dir: &tempfile::TempDir, size: usize) -> Held {
        let url = format!("sqlite://{}/held.db", dir.path().display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let held = Held::open(options, size, Duration::from_millis(200))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&held)
            .await
            .unwrap();
        held
    }

    async fn count(held: &Held) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(held)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_commit_is_rolled_back_and_the_writer_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let writer = held(&dir, 1).await;
        {
            let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Dropped here, as when a request is cancelled mid-transaction.
        }
        let after_drop = count(&writer).await;
        let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        assert_eq!(after_drop, 0, "the uncommitted row is gone");
        assert_eq!(
            count(&writer).await,
            1,
            "a new transaction begins and commits"
        );
    }

    #[tokio::test]
    async fn a_lease_waits_for_a_free_connection_and_times_out_when_none_comes() {
        let dir = tempfile::tempdir().unwrap();
        let one = held(&dir, 1).await;
        let lent = one.lease().await.unwrap();
        let waiting = one.lease().await.map(|_| ());
        drop(lent);
        let free_again = one.lease().await.map(|_| ());

        assert!(matches!(waiting, Err(sqlx::Error::PoolTimedOut)));
        assert!(free_again.is_ok());
        assert_eq!(one.usage().idle, 1);
    }
}
