//! Reading the change feed (migrations 0008 and, for SQLite's triggers, 0009): the rows
//! triggers write when a grant, a session, a person or a revoked `jti` changes, read by every
//! process a few times a second to drop what its [`HolderCache`] holds about them; and the
//! `keys` rows the key commands write, on which each process re-reads the shared keys folder.
//! Each backend says how its rows are read ([`FeedSource`]); what is done with them is here.
//!
//! Sequence numbers are handed out when a row is written but become visible when its
//! transaction commits, which may be out of order: a reader that only remembered the highest
//! number seen could skip one committed a moment later. So the cursor keeps the highest number
//! below which it has seen every row (the horizon) and the numbers seen above it; a missing
//! number (a transaction still running, or one rolled back) is waited for [`GAP_WAIT`], then
//! passed over.

use super::StoreError;
use super::TokenHolder;
use super::args::Arg;
use super::columns::{Columns, FromColumns};
use super::holder_cache::{Changed, HolderCache};
use super::rows::CacheableHolder;
use crate::domain::GrantId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How often each process reads the feed (`jobs.rs` runs it).
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long a missing sequence number is waited for before it is taken as rolled back.
const GAP_WAIT: Duration = Duration::from_secs(5);
/// Rows read per round trip.
const BATCH: i64 = 1000;

/// Where the feed ends now (either engine), shaped as a [`FeedRow`].
pub(super) const START: &str =
    "SELECT COALESCE(MAX(seq), 0) AS seq, 'end' AS kind, '' AS key FROM changes";
/// Up to `$2` rows after `$1`, in order (either engine).
pub(super) const READ: &str =
    "SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Deletes up to `$1` rows written more than an hour ago by the database's clock (the one the
/// triggers write with), far longer than any process takes between two reads.
pub(super) const FORGET_OLD: &str = "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes \
    WHERE at <= floor(extract(epoch FROM clock_timestamp()))::bigint - 3600 LIMIT $1)";
/// [`FORGET_OLD`] in SQLite's words.
pub(super) const FORGET_OLD_SQLITE: &str = "DELETE FROM changes WHERE seq IN (SELECT seq \
    FROM changes WHERE at <= unixepoch() - 3600 LIMIT $1)";

/// One row of the feed.
#[derive(Debug)]
pub(super) struct FeedRow {
    seq: i64,
    kind: String,
    key: String,
}

impl FromColumns for FeedRow {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: r.int("seq")?,
            kind: r.text("kind")?,
            key: r.text("key")?,
        })
    }
}

/// How a backend reads its feed: [`START`] and [`READ`] on its own connections.
pub(super) trait FeedSource {
    /// The rows `sql` returns with `args` bound as `$1`, `$2`, ….
    async fn feed_rows(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<FeedRow>, StoreError>;

    /// The highest sequence number written so far (0: none).
    async fn feed_end(&self) -> Result<i64, StoreError> {
        Ok(self
            .feed_rows(START, &[])
            .await?
            .first()
            .map_or(0, |r| r.seq))
    }

    /// Up to `limit` rows after `after`, in order.
    async fn feed_after(&self, after: i64, limit: i64) -> Result<Vec<FeedRow>, StoreError> {
        self.feed_rows(READ, &[Arg::Int(after), Arg::Int(limit)])
            .await
    }
}

/// Where this process is in the feed.
#[derive(Debug, Default)]
pub(super) struct FeedCursor {
    /// Every row up to here has been applied (`None`: not started).
    horizon: Option<i64>,
    /// Rows applied above the horizon.
    seen: BTreeSet<i64>,
    /// Missing numbers above the horizon, and since when.
    gaps: BTreeMap<i64, Instant>,
}

impl FeedCursor {
    /// The rows of `rows` (in order) not applied before; moves the horizon over what is
    /// complete, and over gaps waited for long enough at `now`.
    fn take(&mut self, rows: Vec<(i64, Changed)>, now: Instant) -> Vec<Changed> {
        let horizon = self.horizon.unwrap_or(0);
        let mut fresh = Vec::new();
        for (seq, change) in rows {
            if seq > horizon && self.seen.insert(seq) {
                fresh.push(change);
            }
        }
        let mut horizon = horizon;
        while let Some(&lowest) = self.seen.first() {
            let next = horizon + 1;
            if lowest == next {
                self.seen.remove(&next);
                self.gaps.remove(&next);
                horizon = next;
                continue;
            }
            let since = *self.gaps.entry(next).or_insert(now);
            if now.duration_since(since) < GAP_WAIT {
                break;
            }
            self.gaps.remove(&next);
            horizon = next;
        }
        self.horizon = Some(horizon);
        fresh
    }
}

/// Writes a `keys` row: every process re-reads the shared keys folder at its next read.
pub(super) const ANNOUNCE_KEYS: &str = "INSERT INTO changes (kind, key, at) \
    VALUES ('keys', '', floor(extract(epoch FROM clock_timestamp()))::bigint)";
/// [`ANNOUNCE_KEYS`] in SQLite's words.
pub(super) const ANNOUNCE_KEYS_SQLITE: &str =
    "INSERT INTO changes (kind, key, at) VALUES ('keys', '', unixepoch())";

/// What one read of the feed found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Followed {
    /// Changes applied to the cache.
    pub applied: usize,
    /// Whether a process changed the shared keys folder (`keys revoke`, `keys rotate`).
    pub keys_changed: bool,
}

/// What a store keeps in step with the feed: the [`HolderCache`] and where it is in the feed.
/// Cheap to clone (the store is cloned per worker); every clone shares the same memory.
#[derive(Clone, Debug, Default)]
pub(super) struct Follower {
    /// What access-token checks need, per token.
    pub(super) cache: std::sync::Arc<HolderCache>,
    cursor: std::sync::Arc<Mutex<FeedCursor>>,
}

impl Follower {
    /// What this process just changed, dropped from its own cache at once (other processes
    /// learn it from the feed).
    pub(super) fn forget(&self, changed: &[Changed]) {
        self.cache.apply(changed);
    }

    /// A live access token's holder: from memory while the feed is followed, otherwise by
    /// `read` (the database; not run when memory answers), whose answer is then kept unless a
    /// change was applied meanwhile.
    pub(super) async fn token_holder(
        &self,
        grant: &GrantId,
        jti: &str,
        now: OffsetDateTime,
        read: impl Future<Output = Result<Option<CacheableHolder>, StoreError>>,
    ) -> Result<Option<TokenHolder>, StoreError> {
        let ticket = match self.cache.get(grant, jti, now) {
            Ok(holder) => return Ok(Some(holder)),
            Err(ticket) => ticket,
        };
        Ok(read.await?.map(|r| {
            self.cache
                .put(ticket, grant, jti, &r.holder, r.live_until, r.session);
            r.holder
        }))
    }

    /// One read of `source`'s feed (see [`follow`]).
    pub(super) async fn follow(&self, source: &impl FeedSource) -> Result<Followed, StoreError> {
        follow(source, &self.cursor, &self.cache).await
    }
}

/// One read of the feed: every change not yet applied goes to `cache`, which then counts as
/// fresh. The first read only finds where the feed ends (the cache starts empty).
async fn follow(
    source: &impl FeedSource,
    cursor: &Mutex<FeedCursor>,
    cache: &HolderCache,
) -> Result<Followed, StoreError> {
    let start = cursor.lock().ok().and_then(|c| c.horizon);
    let Some(mut after) = start else {
        let end = source.feed_end().await?;
        if let Ok(mut c) = cursor.lock() {
            c.horizon = Some(end);
        }
        cache.confirm();
        return Ok(Followed::default());
    };
    let mut followed = Followed::default();
    loop {
        let rows = source.feed_after(after, BATCH).await?;
        let full = rows.len() as i64 == BATCH;
        after = rows.last().map_or(after, |row| row.seq);
        let rows = rows
            .into_iter()
            .map(|row| (row.seq, changed(&row.kind, row.key)))
            .collect();
        let fresh = match cursor.lock() {
            Ok(mut c) => c.take(rows, Instant::now()),
            // A poisoned cursor cannot say what was applied: start over with nothing cached.
            Err(_) => vec![Changed::All],
        };
        followed.applied += fresh.len();
        followed.keys_changed |= fresh.contains(&Changed::Keys);
        cache.apply(&fresh);
        if !full {
            break;
        }
    }
    cache.confirm();
    Ok(followed)
}

/// A row's change; a kind this release does not know drops everything.
fn changed(kind: &str, key: String) -> Changed {
    match kind {
        "grant" => Changed::Grant(key),
        "session" => Changed::Session(key),
        "user" => Changed::User(key),
        "jti" => Changed::Jti(key),
        "keys" => Changed::Keys,
        _ => Changed::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seqs: &[i64]) -> Vec<(i64, Changed)> {
        seqs.iter()
            .map(|s| (*s, Changed::Grant(format!("g{s}"))))
            .collect()
    }

    #[test]
    fn rows_are_applied_once_and_the_horizon_follows_them() {
        let t0 = Instant::now();
        let mut cursor = FeedCursor {
            horizon: Some(10),
            ..FeedCursor::default()
        };
        assert_eq!(
            cursor.take(rows(&[9, 11, 12]), t0).len(),
            2,
            "old rows are skipped"
        );
        assert_eq!(cursor.horizon, Some(12));
        assert!(cursor.take(rows(&[11, 12]), t0).is_empty(), "applied once");
    }

    #[test]
    fn a_row_committed_late_behind_a_later_one_is_still_applied() {
        let t0 = Instant::now();
        let mut cursor = FeedCursor {
            horizon: Some(10),
            ..FeedCursor::default()
        };
        // 12 commits before 11.
        assert_eq!(cursor.take(rows(&[12]), t0).len(), 1);
        assert_eq!(cursor.horizon, Some(10), "waits for 11");
        let late = cursor.take(rows(&[11, 12]), t0 + Duration::from_millis(300));
        assert_eq!(late, vec![Changed::Grant("g11".into())]);
        assert_eq!(cursor.horizon, Some(12));
    }

    #[test]
    fn a_number_that_never_comes_is_passed_over_after_a_while() {
        let t0 = Instant::now();
        let mut cursor = FeedCursor {
            horizon: Some(10),
            ..FeedCursor::default()
        };
        cursor.take(rows(&[12]), t0);
        cursor.take(rows(&[12]), t0 + Duration::from_secs(1));
        assert_eq!(cursor.horizon, Some(10));
        cursor.take(rows(&[12]), t0 + GAP_WAIT + Duration::from_secs(1));
        assert_eq!(cursor.horizon, Some(12), "11 was rolled back");
    }
}
