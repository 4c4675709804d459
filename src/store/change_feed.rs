//! Reading the Postgres change feed (migration 0008): the rows triggers write when a grant, a
//! session, a person or a revoked `jti` changes, read by every process a few times a second
//! to drop what its [`HolderCache`] holds about them; and the `keys` rows the key commands
//! write, on which each process re-reads the shared keys folder.
//!
//! Sequence numbers are handed out when a row is written but become visible when its
//! transaction commits, which may be out of order: a reader that only remembered the highest
//! number seen could skip one committed a moment later. So the cursor keeps the highest number
//! below which it has seen every row (the horizon) and the numbers seen above it; a missing
//! number (a transaction still running, or one rolled back) is waited for [`GAP_WAIT`], then
//! passed over.

use super::StoreError;
use super::holder_cache::{Changed, HolderCache};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each process reads the feed (`jobs.rs` runs it).
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long a missing sequence number is waited for before it is taken as rolled back.
const GAP_WAIT: Duration = Duration::from_secs(5);
/// Rows read per round trip.
const BATCH: i64 = 1000;

const START: &str = "SELECT COALESCE(MAX(seq), 0) FROM changes";
/// Deletes up to `$1` rows written more than an hour ago by the database's clock (the one the
/// triggers write with), far longer than any process takes between two reads.
pub(super) const FORGET_OLD: &str = "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes \
    WHERE at <= floor(extract(epoch FROM clock_timestamp()))::bigint - 3600 LIMIT $1)";
pub(super) const READ: &str =
    "SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2";

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

/// What one read of the feed found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Followed {
    /// Changes applied to the cache.
    pub applied: usize,
    /// Whether a process changed the shared keys folder (`keys revoke`, `keys rotate`).
    pub keys_changed: bool,
}

/// One read of the feed: every change not yet applied goes to `cache`, which then counts as
/// fresh. The first read only finds where the feed ends (the cache starts empty).
pub(super) async fn follow(
    pool: &PgPool,
    cursor: &Mutex<FeedCursor>,
    cache: &HolderCache,
) -> Result<Followed, StoreError> {
    let start = cursor.lock().ok().and_then(|c| c.horizon);
    let Some(mut after) = start else {
        let end: i64 = sqlx::query_scalar(START).fetch_one(pool).await?;
        if let Ok(mut c) = cursor.lock() {
            c.horizon = Some(end);
        }
        cache.confirm();
        return Ok(Followed::default());
    };
    let mut followed = Followed::default();
    loop {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(READ)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
        let full = rows.len() as i64 == BATCH;
        after = rows.last().map_or(after, |(seq, _, _)| *seq);
        let rows = rows
            .into_iter()
            .map(|(seq, kind, key)| (seq, changed(&kind, key)))
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
