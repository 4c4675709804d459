//! Postgres backend: for production and for more than one guildgate process.
//!
//! The SQL, the row decoding and the `Store` methods are shared with SQLite (`sql.rs`,
//! `rows.rs`, `shared.rs`, `lifecycle.rs`); this file holds only what differs: how the pool
//! connects, how a writing transaction starts, which migrations apply, and how the back-channel
//! logout queue is claimed. Under READ COMMITTED a conditional `UPDATE` takes the row lock and
//! re-checks its `WHERE` after a concurrent winner commits, which is what makes the shared
//! single-use gates exclusive here. The statements that stand for SQLite's scripts are in
//! `postgres_scripts.rs`.

use super::args::Arg;
use super::columns::FromColumns;
use super::{ConnectError, StoreError};
use kept::KeptPool;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use statements::{AllRows, Changed, FirstRow};
use std::str::FromStr;
use std::time::Duration;

/// How long start-up (and any request) waits for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection used this recently is handed out without a ping (see [`PgStore::connect`]).
const TRUST_RECENTLY_USED: Duration = Duration::from_secs(1);

/// This backend's migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The [`Store`](super::Store) on a Postgres database.
#[derive(Clone, Debug)]
pub struct PgStore {
    /// The durable pool, with the connections its statements keep (`postgres_kept.rs`).
    pool: KeptPool,
    /// Connections whose commits do not wait for the WAL flush, for what a sign-in writes
    /// before any app holds a token (see [`PgStore::transient`]).
    transient: KeptPool,
    /// What access-token checks need, kept in memory and in step with the change feed.
    follower: super::change_feed::Follower,
}

impl PgStore {
    /// Connects to `url` once, failing within about five seconds with the driver's reason
    /// (see [`connect_waiting`](super::connect_waiting) for the start-up wait).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let failed = |cause| StoreError::Connect(ConnectError::new(url, cause));
        let given = PgConnectOptions::from_str(url).map_err(failed)?;
        // The pool retries a refused connection until its deadline and then reports only
        // "pool timed out"; one direct attempt first surfaces the real reason (refused, bad
        // password, no such database) as one clear start-up line. On this machine it is made
        // without TLS first (`postgres_tls.rs`), and with the URL's default if that is refused.
        let (options, ()) = tls::first_that_connects(given, url, probe)
            .await
            .map_err(failed)?;
        // Made on the statement thread (`postgres_thread.rs`), as most connections are.
        let (pool, transient) = statements::on_statement_thread(async move {
            let pool = pool_options(max_connections)
                .connect_with(options.clone())
                .await?;
            // Opened on first use: a process that never signs anyone in never opens one.
            let transient = pool_options(transient_connections(max_connections))
                .connect_lazy_with(options.options([("synchronous_commit", "off")]));
            Ok::<_, sqlx::Error>((pool, transient))
        })
        .await?
        .map_err(failed)?;
        Ok(Self {
            pool: KeptPool::new(pool),
            transient: KeptPool::new(transient),
            follower: super::change_feed::Follower::default(),
        })
    }

    /// Moves up to `$3` due deliveries (`next_attempt_at <= $1`) to `$2`, returning them.
    /// `SKIP LOCKED` lets processes claiming at once take disjoint rows without waiting; a row
    /// another claim has already moved is re-checked against `next_attempt_at <= $1` once its
    /// lock is free (READ COMMITTED) and so is not claimed twice.
    const CLAIM_LOGOUTS: &str = "UPDATE logout_deliveries SET next_attempt_at = $2 \
        WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
            ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
        RETURNING id, client_id, session_id, user_id, uri, logout_token, attempts, \
            next_attempt_at, created_at";

    /// The first row `sql` returns, decoded.
    async fn read_one<T: FromColumns>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        OnPool(&self.pool).read_one(sql, args).await
    }

    /// The first row a writing `sql` returns (the same pool as [`Self::read_one`]).
    async fn write_one<T: FromColumns>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        OnPool(&self.pool).write_one(sql, args).await
    }

    /// Runs `sql`; how many rows it changed.
    async fn write(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        OnPool(&self.pool).write(sql, args).await
    }

    /// Runs one of this backend's scripts, each a single statement (data-modifying CTEs): one
    /// round trip in the statement's implicit transaction; the rows it produced. The same entry
    /// point as SQLite's several statements.
    async fn in_one_trip<T: FromColumns>(
        &self,
        statement: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StoreError> {
        OnPool(&self.pool).in_one_trip(statement, args).await
    }

    /// Where the writes of a sign-in in progress go: the pending Discord login, the new
    /// session and its last-seen time, the authorization code (and its spend on the full
    /// path), and the same for pushed requests and device codes. Their commits do not wait
    /// for the WAL to reach the disk (`synchronous_commit = off`, on these connections only),
    /// which takes the flush out of three of a sign-in's four writes. A database crash can
    /// forget the last moments of them (Postgres bounds it at three times `wal_writer_delay`);
    /// those people sign in again. No app can hold a token that depends on a forgotten row:
    /// the grant a code is redeemed for is written on the durable pool (with the code's spend,
    /// in one trip), and a commit that waits for the flush flushes every commit before it.
    fn transient(&self) -> OnPool<'_> {
        OnPool(&self.transient)
    }

    /// Applies this backend's migrations.
    async fn run_migrations(&self) -> Result<(), StoreError> {
        Ok(MIGRATOR.run(self.pool.pool()).await?)
    }

    /// The versions of the migrations applied to this database, without creating anything.
    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(self.pool.pool())
            .await?;
        if !exists {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(super::sql::APPLIED_MIGRATIONS)
            .fetch_all(self.pool.pool())
            .await?)
    }

    /// This backend's migrations: version and description.
    pub(super) fn known_migrations() -> Vec<(i64, String)> {
        super::migration_list(&MIGRATOR)
    }

    /// Every statement uses the one pool: Postgres runs concurrent writers itself.
    fn reader(&self) -> &PgPool {
        self.pool.pool()
    }

    /// The same pool as [`reader`](Self::reader).
    fn writer(&self) -> &PgPool {
        self.pool.pool()
    }

    /// The connections of both pools.
    fn pools_in_use(&self) -> super::PoolUsage {
        self.pool.usage() + self.transient.usage()
    }

    /// A writing transaction (row locks do the serialising on Postgres).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        Ok(self.pool.pool().begin().await?)
    }

    /// The clean-up of the change feed: rows older than an hour; how many went.
    async fn forget_old_changes(&self, batch: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(super::change_feed::FORGET_OLD)
            .bind(i64::from(batch))
            .execute(self.pool.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Postgres checkpoints by itself: no job.
    async fn checkpoint_wal(&self) -> Result<Option<std::time::Duration>, StoreError> {
        Ok(None)
    }

    /// A `keys` row in the change feed.
    async fn announce_keys(&self) -> Result<(), StoreError> {
        sqlx::query(super::change_feed::ANNOUNCE_KEYS)
            .execute(self.pool.pool())
            .await?;
        Ok(())
    }
}

/// Statements run on one of the store's pools, each in its own implicit transaction.
#[derive(Clone, Copy)]
struct OnPool<'a>(&'a KeptPool);

impl OnPool<'_> {
    /// The first row `sql` returns, decoded.
    async fn read_one<T: FromColumns>(
        self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        let row = statements::run::<FirstRow>(self.0, sql, args).await?;
        Ok(row.as_ref().map(T::from_columns).transpose()?)
    }

    /// The first row a writing `sql` returns.
    async fn write_one<T: FromColumns>(
        self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        self.read_one(sql, args).await
    }

    /// Runs `sql`; how many rows it changed.
    async fn write(self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        statements::run::<Changed>(self.0, sql, args).await
    }

    /// Runs one single-statement script; the rows it produced.
    async fn in_one_trip<T: FromColumns>(
        self,
        statement: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StoreError> {
        let rows = statements::run::<AllRows>(self.0, statement, args).await?;
        Ok(rows.iter().map(T::from_columns).collect::<Result<_, _>>()?)
    }
}

/// The change feed read on the pool.
impl super::change_feed::FeedSource for PgStore {
    async fn feed_rows(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<super::change_feed::FeedRow>, StoreError> {
        let rows = statements::bind(sqlx::query(sql), args)
            .fetch_all(self.pool.pool())
            .await?;
        Ok(rows
            .iter()
            .map(super::change_feed::FeedRow::from_columns)
            .collect::<Result<_, _>>()?)
    }
}

/// The pool's settings, with at most `max_connections` connections.
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(CONNECT_TIMEOUT)
        // sqlx pings a connection before every use by default: a second round trip per
        // statement (its ping of every connection given back is what `postgres_kept.rs`
        // spares the statements). A connection busy within the last second is known to be
        // alive; one idle for longer (the database may have restarted meanwhile) is pinged
        // first, so an outage costs no request after the database is back.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < TRUST_RECENTLY_USED {
                    return Ok(true);
                }
                conn.ping().await?;
                Ok(true)
            })
        })
}

/// The size of the transient pool beside a durable pool of `max_connections`: half as many.
fn transient_connections(max_connections: u32) -> u32 {
    max_connections.div_ceil(2)
}

/// One direct connection with `options`, closed again: whether (and why not) it can be made
/// within [`CONNECT_TIMEOUT`].
async fn probe(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(connected) => connected?.close().await,
        Err(_elapsed) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer from the database within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        ))),
    }
}

super::shared::impl_store!(PgStore, sqlx::Postgres);

#[path = "postgres_thread.rs"]
mod statements;

#[path = "postgres_kept.rs"]
mod kept;

#[path = "postgres_scripts.rs"]
mod scripts;

#[path = "postgres_tls.rs"]
mod tls;
pub use tls::connect_one;

#[cfg(test)]
#[path = "postgres_plans.rs"]
mod plans;

#[cfg(test)]
#[path = "postgres_durability.rs"]
mod durability;

#[cfg(test)]
#[path = "postgres_kept_tests.rs"]
mod kept_tests;

#[cfg(test)]
#[path = "postgres_test_db.rs"]
mod test_db;
