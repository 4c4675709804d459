//! Connections the statement thread keeps between statements instead of giving each back to
//! sqlx's pool.
//!
//! sqlx pings every connection given back to its pool (an empty `Sync` and the wait for its
//! `ReadyForQuery`) before another task may take it, whatever `test_before_acquire` says. A
//! statement run on the pool therefore cost two round trips: its own and that ping, each a
//! wake-up of a Postgres backend and of this process's statement thread, with the loopback's
//! TCP work on both sides (BENCHMARKS.md, sixteenth session). Here a connection that has just
//! answered goes straight to the next statement waiting for one, or is kept for the next to
//! come. It goes back to the pool (pinged then, once) when nobody asked for it within
//! [`KEEP_IDLE`], and in any case [`LEASE`] after it was taken from there: transactions,
//! migrations and jobs take theirs from the pool itself, and a busy statement thread must not
//! keep them waiting for long.

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a kept connection waits for the next statement before it goes back to the pool.
/// Well under the pool's one second without a ping (`TRUST_RECENTLY_USED`), so a kept
/// connection is always one the pool would hand out unpinged too.
pub(super) const KEEP_IDLE: Duration = Duration::from_millis(100);

/// How long the statement thread may go on using a connection taken from the pool before it
/// goes back there, however busy: the longest a transaction or a job waits behind statements
/// (with the pool's every connection kept busy) for one of them.
pub(super) const LEASE: Duration = Duration::from_millis(250);

/// A connection taken from the pool, with when. It counts as held by the statements for as long
/// as it lives (its [`Slot`]): dropped (given back to the pool), it tells the statement waiting
/// longest to take one from the pool instead, however it was dropped.
pub(super) struct Held {
    // Declared before the slot, so given back to the pool before the slot is counted back.
    connection: PoolConnection<Postgres>,
    taken_at: Instant,
    _slot: Slot,
}

impl std::ops::Deref for Held {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.connection
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.connection
    }
}

/// One of the pool's connections counted as held by the statements, from the moment a
/// statement starts taking it from the pool to when the [`Held`] it became is dropped. Dropped
/// at any point (the pool timed out, the statement's task ended, the connection went back), it
/// is counted back and the statement waiting longest is told to take one from the pool.
struct Slot(Weak<Kept>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(kept) = self.0.upgrade() {
            kept.lock().release_one();
        }
    }
}

/// A pool with the connections its statements keep (see the module doc).
#[derive(Clone)]
pub(super) struct KeptPool {
    pool: PgPool,
    kept: Arc<Kept>,
}

/// The kept connections (newest last, with when each was kept), the statements waiting for
/// one, how many of the pool's connections the statements hold (kept or in use), and whether a
/// sweep is due to hand back stale ones.
#[derive(Default)]
struct Kept {
    state: Mutex<KeptState>,
    sweeping: AtomicBool,
}

#[derive(Default)]
struct KeptState {
    idle: Vec<(Held, Instant)>,
    waiting: VecDeque<oneshot::Sender<Handed>>,
    held: u32,
}

/// What a statement waiting for a connection is given.
enum Handed {
    /// The connection another statement has just finished with.
    Connection(Held),
    /// Word that one went back to the pool: take it from there.
    FromPool,
}

impl std::fmt::Debug for KeptPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptPool")
            .field("pool", &self.pool)
            .field("kept", &self.kept_count())
            .finish()
    }
}

impl KeptPool {
    /// `pool`, keeping nothing yet.
    pub(super) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            kept: Arc::default(),
        }
    }

    /// The pool itself, for what takes its connection there (transactions, jobs, metrics).
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many connections are kept now: open and idle, though the pool counts them in use.
    pub(super) fn kept_count(&self) -> usize {
        self.kept.lock().idle.len()
    }

    /// The pool's connections, the kept ones counted as the idle ones they are.
    pub(super) fn usage(&self) -> super::super::PoolUsage {
        let mut usage = super::super::PoolUsage::of(&self.pool);
        usage.idle += u64::try_from(self.kept_count()).unwrap_or(u64::MAX);
        usage
    }

    /// The newest kept connection. Else one from the pool while the statements hold fewer
    /// than all of its connections; when they hold them all, the next that one of them
    /// finishes with (or word to take one from the pool, when that one went back there).
    /// Kept connections of a closed pool are let go, so that closing it finishes.
    ///
    /// However it comes, a connection is waited for at most the pool's acquire timeout from
    /// the call, as one waited for in the pool alone would be: during an outage each statement
    /// waiting for a handover would otherwise start its own wait in the pool only when the one
    /// ahead of it had timed out there, and the queue's last would answer after several.
    pub(super) async fn take(&self) -> Result<Held, sqlx::Error> {
        let mut closed = Vec::new();
        let handed_over = {
            let mut kept = self.kept.lock();
            if self.pool.is_closed() {
                closed = std::mem::take(&mut kept.idle);
            }
            if let Some((newest, _)) = kept.idle.pop() {
                return Ok(newest);
            }
            if kept.held < self.pool.options().get_max_connections() {
                kept.held += 1;
                None
            } else {
                let (handed, handed_over) = oneshot::channel();
                kept.waiting.push_back(handed);
                Some(handed_over)
            }
        };
        // Each drop takes the lock.
        drop(closed);
        // Nothing was awaited since the call: the wait is counted from it.
        let deadline = tokio::time::Instant::now() + self.pool.options().get_acquire_timeout();
        if let Some(handed_over) = handed_over {
            if let Some(held) = self.handed_over(handed_over, deadline).await? {
                return Ok(held);
            }
        }
        // Counted in `held` above (or by `handed_over`): from here the slot counts it back.
        let slot = Slot(Arc::downgrade(&self.kept));
        // On an error or at the deadline the slot is dropped, so counted back.
        let connection = match tokio::time::timeout_at(deadline, self.pool.acquire()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        Ok(Held {
            connection,
            taken_at: Instant::now(),
            _slot: slot,
        })
    }

    /// Waits until `deadline` for what another statement hands over: its connection, or word
    /// to take one from the pool (`None`, with that one counted in `held` again). Word that
    /// came just as the wait ended is used all the same, or passed on, never lost.
    async fn handed_over(
        &self,
        mut handed_over: oneshot::Receiver<Handed>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Held>, sqlx::Error> {
        let handed = match tokio::time::timeout_at(deadline, &mut handed_over).await {
            Ok(handed) => handed,
            Err(_) => {
                handed_over.close();
                match handed_over.try_recv() {
                    Ok(Handed::Connection(held)) => return Ok(Some(held)),
                    Ok(Handed::FromPool) => self.kept.lock().pass_on(),
                    Err(_) => {}
                }
                return Err(sqlx::Error::PoolTimedOut);
            }
        };
        match handed {
            Ok(Handed::Connection(held)) => Ok(Some(held)),
            // Told to take one from the pool (or the sender is gone with the process).
            Ok(Handed::FromPool) | Err(_) => {
                self.kept.lock().held += 1;
                Ok(None)
            }
        }
    }

    /// Hands `held`, which has just answered a statement in full, to the statement waiting
    /// longest, or keeps it for the next; gives it back to the pool once its lease is over.
    pub(super) fn keep(&self, mut held: Held) {
        let now = Instant::now();
        if now.saturating_duration_since(held.taken_at) >= LEASE || self.pool.is_closed() {
            // Back to the pool (see `Slot`'s drop).
            return drop(held);
        }
        let mut kept = self.kept.lock();
        while let Some(waiting) = kept.waiting.pop_front() {
            match waiting.send(Handed::Connection(held)) {
                Ok(()) => return,
                Err(Handed::Connection(back)) => held = back,
                // Not what was sent.
                Err(Handed::FromPool) => return,
            }
        }
        kept.idle.push((held, now));
        if !self.kept.sweeping.swap(true, Ordering::AcqRel) {
            let kept = Arc::downgrade(&self.kept);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(KEEP_IDLE).await;
                    let Some(kept) = kept.upgrade() else { return };
                    if kept.sweep(Instant::now()) == 0 {
                        return;
                    }
                }
            });
        }
    }

    /// Leaves the sweeps to the test (no sweep runs by itself until [`Self::sweep`] finds
    /// nothing kept), so what it asserts does not race a timer.
    #[cfg(test)]
    pub(super) fn sweep_by_hand(&self) {
        self.kept.sweeping.store(true, Ordering::Release);
    }

    /// One sweep at `now` (see [`Kept::sweep`]).
    #[cfg(test)]
    pub(super) fn sweep(&self, now: Instant) -> usize {
        self.kept.sweep(now)
    }
}

/// A store dropped where no Tokio runtime runs (a test's end, say) still gives its kept
/// connections back: sqlx hands a dropped connection back on a task.
impl Drop for Kept {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut().unwrap_or_else(PoisonError::into_inner));
        if !state.idle.is_empty() && tokio::runtime::Handle::try_current().is_err() {
            super::statements::drop_on_statement_thread(state.idle);
        }
    }
}

impl Kept {
    fn lock(&self) -> MutexGuard<'_, KeptState> {
        // The state is whole after any panic: each push or pop either happened or did not.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives back to the pool every connection kept since before `now - KEEP_IDLE`; how many
    /// are still kept. When none is, the sweep ends (under the lock, so a `keep` after it
    /// starts the next).
    fn sweep(&self, now: Instant) -> usize {
        let stale: Vec<_>;
        let left = {
            let mut kept = self.lock();
            let fresh_from = kept
                .idle
                .iter()
                .position(|(_, since)| now.saturating_duration_since(*since) < KEEP_IDLE)
                .unwrap_or(kept.idle.len());
            stale = kept.idle.drain(..fresh_from).collect();
            if kept.idle.is_empty() {
                self.sweeping.store(false, Ordering::Release);
            }
            kept.idle.len()
        };
        // Dropped outside the lock, which each drop takes: each hands its connection back
        // (with sqlx's ping) on a task of its own.
        drop(stale);
        left
    }
}

impl KeptState {
    /// One held connection fewer: the statement waiting longest (if any) is told to take one
    /// from the pool.
    fn release_one(&mut self) {
        self.held = self.held.saturating_sub(1);
        self.pass_on();
    }

    /// Tells the statement waiting longest (if any) to take a connection from the pool, for a
    /// held connection counted back already.
    fn pass_on(&mut self) {
        while let Some(waiting) = self.waiting.pop_front() {
            if waiting.send(Handed::FromPool).is_ok() {
                break;
            }
        }
    }
}
