//! SQLite's WAL copied into the database file by a background job, not by whichever request
//! happened to fill it.
//!
//! SQLite checkpoints on the committing connection once the WAL holds `wal_autocheckpoint`
//! pages. On the request writer (`direct.rs`) that was an HTTP worker thread, under the write
//! lease, for the copy and two fsyncs (up to 15 ms each on this machine's disk, traced under
//! refresh load): every write of the process waited, and so did every request on that worker.
//! Here a job (`jobs.rs`) runs [`Checkpointer::pass`] on a blocking thread a few times a second
//! while the WAL grows, and the writer's own checkpoint is only the fallback for a job that fell
//! behind (a burst after an idle second, a stalled blocking pool).
//!
//! Why a pass may be run twice: SQLite starts the WAL over (at the next write) only once a
//! checkpoint has copied every frame in it, and a passive pass run beside busy writers ends
//! behind the frames they appended meanwhile; passes alone would let the WAL grow to the
//! fallback's bound. So a pass that ends [`Pass::behind`] is repeated under the write lease,
//! where it copies only what was written during the first and so holds the lease briefly.

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Pages a pass may leave uncopied before it is repeated under the write lease (8 MiB of WAL,
/// half the request writer's own bound). Most passes catch up by themselves, between commits.
const CATCH_UP_PAGES: u64 = 2000;
/// How soon the next pass runs after one that found the WAL large and growing: the writers
/// outpace [`BUSY_EVERY`].
const BEHIND_EVERY: Duration = Duration::from_millis(10);
/// How soon the next pass runs after one that found the WAL changed.
const BUSY_EVERY: Duration = Duration::from_millis(100);
/// How soon the next pass runs after one that found nothing new (an idle process).
const IDLE_EVERY: Duration = Duration::from_secs(1);

/// A connection of its own that checkpoints one SQLite file, and what its last pass found.
pub(super) struct Checkpointer {
    state: Mutex<(Connection, Pass)>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

/// What one checkpoint pass found: frames in the WAL, how many of them are in the file now, and
/// whether the WAL grew since the pass before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pass {
    wal_pages: u64,
    copied: u64,
    grew: bool,
}

impl Pass {
    /// Whether the WAL is large and not about to start over, so the pass must be repeated under
    /// the write lease: pages are left uncopied, or the WAL grew since the last pass. A pass
    /// copies the frames there were when it began, so one that copied them all beside a writer
    /// that never paused still leaves the WAL to grow: SQLite starts it over only when a write
    /// begins after a checkpoint that left nothing behind.
    pub(super) fn behind(&self) -> bool {
        self.wal_pages >= CATCH_UP_PAGES && (self.copied < self.wal_pages || self.grew)
    }
}

impl Checkpointer {
    /// A connection to `path` (already in WAL mode) for checkpoints only.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        // As on every connection: a checkpoint syncs the WAL before it copies and the file after.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Self {
            state: Mutex::new((conn, Pass::default())),
        })
    }

    /// One passive checkpoint: copies into the file every WAL page no open read still needs,
    /// waiting for nobody. Blocks for the copy and its syncs: run it on a blocking thread.
    /// Returns what it found and how soon the next pass is due.
    pub(super) fn pass(&self) -> Result<(Pass, Duration), StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (_busy, wal_pages, copied): (i64, i64, i64) =
            state
                .0
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
        // -1 when the file is not in WAL mode: nothing to copy.
        let wal_pages = u64::try_from(wal_pages).unwrap_or(0);
        let last = state.1;
        let pass = Pass {
            wal_pages,
            copied: u64::try_from(copied).unwrap_or(0),
            grew: wal_pages > last.wal_pages,
        };
        let changed = (pass.wal_pages, pass.copied) != (last.wal_pages, last.copied);
        state.1 = pass;
        let next = if pass.behind() {
            BEHIND_EVERY
        } else if changed {
            BUSY_EVERY
        } else {
            IDLE_EVERY
        };
        Ok((pass, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_repeated_under_the_lease_only_when_it_left_much_behind() {
        let pass = |wal_pages, copied, grew| Pass {
            wal_pages,
            copied,
            grew,
        };
        assert!(pass(2500, 2200, false).behind());
        assert!(
            pass(2500, 2500, true).behind(),
            "copied, but a writer goes on"
        );
        assert!(!pass(2500, 2500, false).behind(), "caught up and at rest");
        assert!(
            !pass(300, 100, true).behind(),
            "a small WAL waits for the next pass"
        );
        assert!(!pass(0, 0, false).behind());
    }

    #[test]
    fn an_idle_file_is_looked_at_less_often() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .pragma_update(None, "journal_mode", "wal")
            .and_then(|()| writer.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)"))
            .unwrap();
        let checkpointer = Checkpointer::open(&path).unwrap();

        let (first, soon) = checkpointer.pass().unwrap();
        let (second, later) = checkpointer.pass().unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let (third, again) = checkpointer.pass().unwrap();

        assert!(
            first.wal_pages > 0 && first.copied == first.wal_pages,
            "{first:?}"
        );
        assert_eq!((soon, later), (BUSY_EVERY, IDLE_EVERY));
        assert_eq!(
            (second.wal_pages, second.copied),
            (first.wal_pages, first.copied)
        );
        assert_ne!(third, first, "the write was seen");
        assert_eq!(again, BUSY_EVERY);
    }
}
