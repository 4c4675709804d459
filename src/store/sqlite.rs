//! SQLite backend: one file in WAL mode, for `dev`, tests and single-process deployments.
//!
//! The SQL, the row decoding and the `Store` methods are shared with Postgres (`sql.rs`,
//! `rows.rs`, `shared.rs`, `lifecycle.rs`); this file holds only what differs: how the
//! connections open, how one statement runs (on the calling thread), how a writing transaction
//! starts, which migrations apply, and how the back-channel logout queue is claimed; its
//! writes of several statements are in `sqlite_scripts.rs`.

use super::args::Arg;
use super::checkpoint::{Checkpointer, Pass};
use super::columns::FromColumns;
use super::direct::{self, Direct};
use super::held::{Held, WriteTx};
use super::{ConnectError, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Writing transactions take the write lock up front: a deferred transaction that reads first
/// can fail with `SQLITE_BUSY` on upgrade (WAL snapshot), which `busy_timeout` does not retry.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// This backend's migrations, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The [`Store`](super::Store) on one SQLite file.
///
/// SQLite lets one connection write at a time. Many writing connections would queue inside
/// SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and made the p99 of
/// concurrent refreshes exceed a second; so every write goes through one dedicated connection,
/// and writers queue in order (and without sleeping) for it. Reads use the other connections:
/// in WAL mode they never wait for the writer. The statements a request makes (`shared.rs`) run
/// on the calling thread through rusqlite (`direct.rs`), the writes under the same write lease
/// as sqlx's writer; the bulk and admin work (`lifecycle.rs`, clean-up) runs on sqlx's
/// connections, held open for the life of the process and lent without pings (`held.rs`).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    reader: Held,
    writer: Held,
    /// The per-request statements, run on the calling thread (`direct.rs`).
    direct: Arc<Direct>,
    /// What access-token checks need, kept in memory and in step with the change feed.
    follower: super::change_feed::Follower,
    /// The WAL's checkpoints, run by a job instead of by the request writer.
    checkpointer: Arc<Checkpointer>,
}

impl SqliteStore {
    /// Opens the file named by `url` (WAL, foreign keys on), creating it and its folder if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let failed = |cause| StoreError::Connect(ConnectError::new(url, cause));
        let options = SqliteConnectOptions::from_str(url)
            .map_err(failed)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durability, chosen deliberately: in WAL mode NORMAL syncs at checkpoints, not at
            // every commit. The database never corrupts; a power cut (not a crash of guildgate)
            // can lose the last commits. For a refresh that means the app holds a rotated
            // refresh token the database forgot, and signs the person in again.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        create_parent_folder(options.get_filename()).await?;
        // The writer first: it creates the file and switches it to WAL.
        let writer = Held::open(options.clone(), 1, BUSY_TIMEOUT)
            .await
            .map_err(failed)?;
        let readers = usize::try_from(max_connections.saturating_sub(1)).unwrap_or(1);
        let direct = Direct::open(options.get_filename(), BUSY_TIMEOUT)?;
        let checkpointer = Checkpointer::open(options.get_filename())?;
        // The readers serve only the bulk and admin reads (`lifecycle.rs`): opened when used.
        let reader = Held::lazy(options, readers, BUSY_TIMEOUT);
        Ok(Self {
            reader,
            writer,
            direct: Arc::new(direct),
            follower: super::change_feed::Follower::default(),
            checkpointer: Arc::new(checkpointer),
        })
    }

    /// Connections for statements that only read.
    fn reader(&self) -> &Held {
        &self.reader
    }

    /// The readers' and the writer's connections together.
    fn pools_in_use(&self) -> super::PoolUsage {
        self.reader.usage() + self.writer.usage()
    }

    /// The one connection that writes.
    fn writer(&self) -> &Held {
        &self.writer
    }

    /// Moves up to `$3` due deliveries (`next_attempt_at <= $1`) to `$2`, returning them. Run
    /// inside [`begin_write`](Self::begin_write), which holds the file's single write lock, so
    /// no other connection or process can claim the same rows meanwhile.
    const CLAIM_LOGOUTS: &str = "UPDATE logout_deliveries SET next_attempt_at = $2 \
        WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
            ORDER BY next_attempt_at LIMIT $3) \
        RETURNING id, client_id, session_id, user_id, uri, logout_token, attempts, \
            next_attempt_at, created_at";

    /// The first row `sql` returns, read on this thread (`direct.rs`).
    async fn read_one<T: FromColumns>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        self.direct.read(|conn| direct::one(conn, sql, args))
    }

    /// The first row a writing `sql` returns, written on this thread under the write lease.
    async fn write_one<T: FromColumns>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>, StoreError> {
        let _lease = self.writer.lease().await?;
        self.direct.write(|conn| direct::one(conn, sql, args))
    }

    /// Runs `sql` on this thread under the write lease; how many rows it changed.
    async fn write(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let _lease = self.writer.lease().await?;
        self.direct.write(|conn| direct::run(conn, sql, args))
    }

    /// Runs a script's statements in one `IMMEDIATE` transaction on this thread, under the
    /// write lease; the rows they produced.
    async fn in_one_trip<T: FromColumns>(
        &self,
        script: &'static [&'static str],
        args: &[Arg<'_>],
    ) -> Result<Vec<T>, StoreError> {
        let _lease = self.writer.lease().await?;
        self.direct
            .write(|conn| direct::in_one_transaction(conn, script, args))
    }

    /// Where the writes of a sign-in in progress go (see Postgres): here the same writer,
    /// since every SQLite commit already returns before the WAL is synced
    /// (`synchronous = NORMAL`).
    fn transient(&self) -> &Self {
        self
    }

    /// Applies this backend's migrations, on a one-connection pool of their own (the
    /// migrator manages its transactions through sqlx; the writer's are ours).
    async fn run_migrations(&self) -> Result<(), StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(self.writer.options().clone())
            .await?;
        let applied = MIGRATOR.run(&pool).await;
        pool.close().await;
        Ok(applied?)
    }
}

impl SqliteStore {
    /// The versions of the migrations applied to this database, without creating anything.
    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(self.reader())
        .await?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(super::sql::APPLIED_MIGRATIONS)
            .fetch_all(self.reader())
            .await?)
    }

    /// This backend's migrations: version and description.
    pub(super) fn known_migrations() -> Vec<(i64, String)> {
        super::migration_list(&MIGRATOR)
    }

    /// A writing transaction holding the write lock from its first statement.
    async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        Ok(self.writer.begin(BEGIN_WRITE).await?)
    }

    /// The clean-up of the change feed: rows older than an hour; how many went.
    async fn forget_old_changes(&self, batch: u32) -> Result<u64, StoreError> {
        self.write(
            super::change_feed::FORGET_OLD_SQLITE,
            &[Arg::Int(i64::from(batch))],
        )
        .await
    }

    /// One round of the WAL's checkpoint job (`checkpoint.rs`): a pass beside the writers and,
    /// when that one ended far behind them, a second under the write lease, so the WAL starts
    /// over at the next write.
    async fn checkpoint_wal(&self) -> Result<Option<Duration>, StoreError> {
        let (pass, next) = self.checkpoint_pass().await?;
        if pass.behind() {
            let _lease = self.writer.lease().await?;
            self.checkpoint_pass().await?;
        }
        Ok(Some(next))
    }

    /// One checkpoint pass on a blocking thread (it copies pages and syncs the file).
    async fn checkpoint_pass(&self) -> Result<(Pass, Duration), StoreError> {
        let checkpointer = Arc::clone(&self.checkpointer);
        tokio::task::spawn_blocking(move || checkpointer.pass())
            .await
            .map_err(|e| StoreError::Abandoned(e.to_string()))?
    }

    /// A `keys` row in the change feed: the serving process re-reads the keys folder within a
    /// second of `guildgate keys revoke` or `keys rotate` run beside it.
    async fn announce_keys(&self) -> Result<(), StoreError> {
        self.write(super::change_feed::ANNOUNCE_KEYS_SQLITE, &[])
            .await?;
        Ok(())
    }
}

/// The change feed read on this thread, like the request statements (`direct.rs`).
impl super::change_feed::FeedSource for SqliteStore {
    async fn feed_rows(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<super::change_feed::FeedRow>, StoreError> {
        self.direct.read(|conn| direct::all(conn, sql, args))
    }
}

/// `sqlite://data/guildgate.db` must work on a fresh checkout, so `data/` is made on demand.
async fn create_parent_folder(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|cause| StoreError::Folder {
                    path: dir.display().to_string(),
                    cause,
                })
        }
        _ => Ok(()),
    }
}

super::shared::impl_store!(SqliteStore, sqlx::Sqlite);

#[path = "sqlite_scripts.rs"]
mod scripts;

#[cfg(test)]
#[path = "sqlite_plans.rs"]
mod plans;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenHash;
    use crate::store::Store;

    /// The checkpoint job's rounds alone, at the job's cadence, keep the WAL bounded beside a
    /// writer committing as often as a refresh load does, which never checkpoints itself:
    /// without them the WAL would grow by every page written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_job_alone_keeps_the_wal_bounded_beside_a_steady_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), 4)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
            .direct
            .write(|c| Ok(c.pragma_update(None, "wal_autocheckpoint", 0)?))
            .unwrap();
        let wal = dir.path().join("g.db-wal");
        let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let writes = 8_000;
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                for i in 0..writes {
                    let key = TokenHash::of(&format!("jti-{i}"));
                    assert!(store.spend_jti(&key, expires).await.unwrap());
                    // At most some 4,000 commits a second, a refresh load's rate.
                    if i % 4 == 3 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        });

        let mut largest = 0;
        let mut rounds = 0;
        while !writer.is_finished() {
            let next = store.checkpoint().await.unwrap().expect("SQLite has a job");
            rounds += 1;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()) / 4096);
            tokio::time::sleep(next).await;
        }
        writer.await.unwrap();

        // Each write commits at least one page: a WAL that never started over holds them all.
        assert!(rounds > 1, "{rounds} rounds");
        assert!(
            largest < writes / 2,
            "the WAL reached {largest} pages in {rounds} rounds"
        );
    }
}
