//! SQLite connections kept open for the life of the process and lent out one use at a time.
//!
//! sqlx's pool pings a connection before lending it and again when it comes back: for SQLite
//! each ping is one more round trip to the connection's own thread, which doubled or tripled
//! the cost of a statement (measured: userinfo and the refresh grant spent most of their CPU in
//! those thread switches). A connection to a local file does not go stale, so these are never
//! pinged: a lease is a permit of the slots' gate ([`Gate`]) and a free slot. [`Held`] is an
//! sqlx executor, so the shared SQL runs on it unchanged; [`WriteTx`] is the writer's
//! transaction.

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{ConnectOptions, Either, Execute, Executor, Sqlite};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Notify};

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

/// As many permits as slots, taken by whichever task asks while one is free, unless someone
/// has waited too long.
///
/// Not a fair (first come, first served) semaphore on purpose: a fair one hands a released
/// permit to the longest waiter, which on the other worker thread may be busy signing a token
/// for a quarter of a millisecond before it runs; meanwhile the writer sits idle and so does
/// every request queued behind it. Profiled under 64 refresh chains, both workers spent about
/// half their time waiting that way. Here a released permit goes to the first task to ask, and
/// one waiter is woken to try. So that a waiter cannot keep losing, one that has waited
/// [`STARVING_AFTER`] is served first: newcomers wait until every such waiter has its permit
/// (the same bargain as Go's `sync.Mutex`).
///
/// And a taker that finds the permit held first watches it for [`SPIN_FOR`] before it waits:
/// a request's write holds it for tens of microseconds, on the other worker thread, while a
/// task that waits is woken to the back of its worker's queue, behind every request that
/// worker has ready (about 15 ms under 64 refresh chains). Under that load, those few losers
/// made the refresh p99 four to five times the median (`wrk`: p50 15–17 ms, p99 60–95 ms);
/// watching first brought the p99 to 31–37 ms at the same rate (BENCHMARKS.md).
struct Gate {
    free: AtomicUsize,
    released: Notify,
    /// Waiters that have waited longer than [`STARVING_AFTER`].
    starving: AtomicUsize,
}

/// How long a waiter may lose to newcomers before they let it go first.
const STARVING_AFTER: Duration = Duration::from_micros(500);

/// How long a taker watches a held permit before it waits to be woken: longer than a request's
/// write holds the lease (tens of microseconds, on the other worker thread), far shorter than
/// the queue a woken task rejoins.
const SPIN_FOR: Duration = Duration::from_micros(150);

/// A waiter counted in [`Gate::starving`]; uncounted when it gets its permit or gives up.
struct Starving<'a>(&'a Gate);

impl Drop for Starving<'_> {
    fn drop(&mut self) {
        if self.0.starving.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Newcomers that stepped aside may wait on a permit nobody holds (this waiter gave
            // up): let them look again.
            self.0.released.notify_waiters();
        }
    }
}

impl Gate {
    fn new(permits: usize) -> Self {
        Self {
            free: AtomicUsize::new(permits),
            released: Notify::new(),
            starving: AtomicUsize::new(0),
        }
    }

    fn available(&self) -> usize {
        self.free.load(Ordering::Acquire)
    }

    fn try_take(&self) -> Option<Permit<'_>> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Permit(self))
    }

    /// Watches for a release for up to `within` and takes the permit it frees, unless a
    /// starving waiter other than this one (`is_starving`) must go first.
    fn spin_for_release(&self, is_starving: bool, within: Duration) -> Option<Permit<'_>> {
        let since = std::time::Instant::now();
        while since.elapsed() < within {
            let may_take = is_starving || self.starving.load(Ordering::Acquire) == 0;
            if may_take
                && self.available() > 0
                && let Some(permit) = self.try_take()
            {
                return Some(permit);
            }
            std::hint::spin_loop();
        }
        None
    }

    async fn take(&self) -> Permit<'_> {
        let since = std::time::Instant::now();
        let mut starving: Option<Starving<'_>> = None;
        loop {
            // A newcomer steps aside while someone starves; a starving waiter does not.
            let may_take = starving.is_some() || self.starving.load(Ordering::Acquire) == 0;
            if may_take && let Some(permit) = self.try_take() {
                return permit;
            }
            if may_take && let Some(permit) = self.spin_for_release(starving.is_some(), SPIN_FOR) {
                return permit;
            }
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the second look, so a release in between is not missed.
            released.as_mut().enable();
            let may_take = starving.is_some() || self.starving.load(Ordering::Acquire) == 0;
            if may_take && let Some(permit) = self.try_take() {
                return permit;
            }
            released.await;
            if starving.is_none() && since.elapsed() >= STARVING_AFTER {
                self.starving.fetch_add(1, Ordering::AcqRel);
                starving = Some(Starving(self));
            }
        }
    }
}

/// One of a [`Gate`]'s permits; given back (and a waiter woken) when dropped.
struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.free.fetch_add(1, Ordering::AcqRel);
        if self.0.starving.load(Ordering::Acquire) > 0 {
            // The one woken might be a newcomer that must step aside: wake them all, so a
            // starving waiter is among them.
            self.0.released.notify_waiters();
        }
        self.0.released.notify_one();
    }
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

    /// Many tasks on two threads take one permit in turns, some giving up after a millisecond:
    /// one holder at a time, nobody stranded (every patient task gets through), and no task
    /// waits without bound behind newcomers.
    #[test]
    fn the_gate_lets_one_through_at_a_time_and_starves_nobody() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let gate = Arc::new(Gate::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        let longest = runtime.block_on(async {
            let tasks: Vec<_> = (0..48)
                .map(|i| {
                    let (gate, holders) = (Arc::clone(&gate), Arc::clone(&holders));
                    tokio::spawn(async move {
                        let mut longest = Duration::ZERO;
                        for _ in 0..100 {
                            let asked = std::time::Instant::now();
                            let permit = if i % 8 == 0 {
                                // The impatient: give up after a millisecond.
                                match tokio::time::timeout(Duration::from_millis(1), gate.take())
                                    .await
                                {
                                    Ok(permit) => permit,
                                    Err(_) => continue,
                                }
                            } else {
                                gate.take().await
                            };
                            longest = longest.max(asked.elapsed());
                            assert_eq!(holders.fetch_add(1, Ordering::AcqRel), 0, "two holders");
                            // Work while holding, as a write does.
                            let until = std::time::Instant::now() + Duration::from_micros(20);
                            while std::time::Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            holders.fetch_sub(1, Ordering::AcqRel);
                            drop(permit);
                            // Work without it, as signing a token does.
                            let until = std::time::Instant::now() + Duration::from_micros(60);
                            while std::time::Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            tokio::task::yield_now().await;
                        }
                        longest
                    })
                })
                .collect();
            let mut longest = Duration::ZERO;
            for task in tasks {
                let waited = tokio::time::timeout(Duration::from_secs(60), task)
                    .await
                    .expect("a task was stranded")
                    .unwrap();
                longest = longest.max(waited);
            }
            longest
        });
        assert_eq!(gate.available(), 1, "every permit came back");
        assert_eq!(gate.starving.load(Ordering::Acquire), 0);
        // 47 others ahead at most, each ~0.1 ms: far below a second even on a loaded machine.
        assert!(
            longest < Duration::from_secs(2),
            "a task waited {longest:?}"
        );
    }

    /// A taker watching a held permit takes it as soon as another thread releases it, steps
    /// aside while a starving waiter other than itself is owed it, and gives up at its bound.
    /// (`take` watches for [`SPIN_FOR`]; the bounds here are wide so a busy machine cannot
    /// make the test flaky.)
    #[test]
    fn a_watching_taker_gets_a_release_from_another_thread_unless_a_starving_waiter_is_owed_it() {
        let gate = Arc::new(Gate::new(1));
        let held = Arc::new(std::sync::Barrier::new(2));
        let holder = {
            let (gate, held) = (Arc::clone(&gate), Arc::clone(&held));
            std::thread::spawn(move || {
                let permit = gate.try_take().expect("free");
                held.wait();
                std::thread::sleep(Duration::from_millis(5));
                drop(permit);
            })
        };
        held.wait();
        let permit = gate.spin_for_release(false, Duration::from_secs(30));
        assert!(permit.is_some(), "the release was seen");
        holder.join().unwrap();
        // Held by this test now: nobody releases, so the watch ends empty at its bound.
        assert!(
            gate.spin_for_release(false, Duration::from_millis(2))
                .is_none()
        );
        drop(permit);

        // Free, but a starving waiter is owed it: a newcomer steps aside, the starving one takes it.
        gate.starving.fetch_add(1, Ordering::AcqRel);
        assert!(
            gate.spin_for_release(false, Duration::from_millis(2))
                .is_none()
        );
        assert!(
            gate.spin_for_release(true, Duration::from_millis(2))
                .is_some()
        );
        gate.starving.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(gate.available(), 1, "every permit came back");
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
