//! SQLite statements run on the thread that asks, for the store's per-request operations.
//!
//! sqlx drives every SQLite connection from a thread of its own: each statement is a message to
//! that thread and a wake-up back. Profiles of `/userinfo` and of the sign-in showed those two
//! thread switches as most of what a statement cost (a local read takes microseconds), and a
//! sign-in's writes queue one after another behind them. So the operations a request makes run
//! here instead, through rusqlite, on connections of their own, on the calling thread:
//! - reads on a small stack of reader connections (WAL: a reader never waits for the writer);
//! - writes on one writer connection, only while the caller holds the process's write lease
//!   (the sqlx writer's, `held.rs`), so one connection writes at a time as before.
//!
//! The cost of running inline: a statement blocks its thread for as long as it runs. That is
//! microseconds for these indexed statements; a write that meets another *process*'s write lock
//! (an admin command) waits up to the busy timeout. Bulk work (clean-up, the logout queue, admin
//! listings) stays on sqlx's threads.

use super::StoreError;
use super::args::Arg;
use super::columns::{DirectRow, FromColumns};
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement, ToSql};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How many WAL pages the request writer lets accumulate before it checkpoints itself: the
/// fallback for when the checkpoint job (`checkpoint.rs`) falls behind (see `connect`).
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

/// Prepared statements kept per connection: every statement the operations here run, with room.
const STATEMENT_CACHE: usize = 48;

/// Connections to one SQLite file, used on the calling thread.
pub(super) struct Direct {
    path: PathBuf,
    busy: Duration,
    /// Idle reader connections; one is opened when none is idle (at most one per thread that
    /// reads at the same moment, so the stack stays as small as the number of worker threads).
    readers: Mutex<Vec<Connection>>,
    /// The writer; used only under the process's write lease.
    writer: Mutex<Connection>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("path", &self.path).finish()
    }
}

impl Direct {
    /// Opens the writer on `path`, which must exist in WAL mode already (the sqlx writer made it).
    pub(super) fn open(path: &Path, busy: Duration) -> Result<Self, StoreError> {
        let writer = connect(path, busy, false)?;
        Ok(Self {
            path: path.to_owned(),
            busy,
            readers: Mutex::new(Vec::new()),
            writer: Mutex::new(writer),
        })
    }

    /// Runs `read` on an idle reader connection (opened if none is idle).
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, self.busy, true)?,
        };
        let answer = read(&conn);
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        answer
    }

    /// Runs `write` on the writer. The caller holds the process's write lease (see the module
    /// doc); the lock here only makes the connection shareable between threads.
    pub(super) fn write<T>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while writing leaves nothing half-done behind: `in_one_transaction` rolls
        // back, single statements commit or not; so a poisoned lock's connection is still good.
        let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        write(&conn)
    }
}

/// One connection: the same settings as the sqlx ones (`sqlite.rs`), readers made query-only.
fn connect(path: &Path, busy: Duration, reader: bool) -> Result<Connection, StoreError> {
    // NO_MUTEX: a connection is used by one thread at a time (it sits behind a lock here).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: a statement keeps the plan it was compiled with
    // whatever values are bound. Without it, once the file holds statistics (an operator's
    // `ANALYZE` or `PRAGMA optimize`; this SQLite is built with STAT4) each bind of a new value
    // compiles the statement again, which made `/userinfo` 3.6× slower on a million people.
    // Every statement here looks a row up by key, so no plan depends on a value.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if reader {
        conn.pragma_update(None, "query_only", true)?;
    } else {
        // SQLite checkpoints the WAL into the file on the committing connection, under our
        // write lease, every `wal_autocheckpoint` pages (1,000 by default): at 3,500 refreshes a
        // second that was several checkpoints a second on the worker threads, each syncing
        // twice while every other write waited. The checkpoint job (`checkpoint.rs`) does that
        // work on a blocking thread and keeps the WAL well under 4,000 pages (16 MiB), so this
        // is only the bound for when the job falls behind (exceeded by what is written during
        // one of its passes, which holds SQLite's checkpoint lock meanwhile). Durability is
        // unchanged (WAL, `synchronous = NORMAL`).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    }
    Ok(conn)
}

/// The first row `sql` returns, decoded.
pub(super) fn one<T: FromColumns>(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Option<T>, StoreError> {
    let mut statement = prepared(conn, sql, args)?;
    let mut rows = statement.raw_query();
    match rows.next()? {
        Some(row) => Ok(Some(T::from_columns(&DirectRow(row))?)),
        None => Ok(None),
    }
}

/// Every row `sql` returns, decoded.
pub(super) fn all<T: FromColumns>(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<T>, StoreError> {
    let mut statement = prepared(conn, sql, args)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_columns(&DirectRow(row))?);
    }
    Ok(out)
}

/// Runs `sql`; how many rows it changed.
pub(super) fn run(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
    let changed = prepared(conn, sql, args)?.raw_execute()?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

/// Runs `statements` in one `IMMEDIATE` transaction, each bound from the same `args`, and
/// returns the rows they produced; any failure rolls the whole back.
pub(super) fn in_one_transaction<T: FromColumns>(
    conn: &Connection,
    statements: &[&str],
    args: &[Arg<'_>],
) -> Result<Vec<T>, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = statements
        .iter()
        .try_fold(Vec::new(), |mut out, sql| {
            out.extend(all::<T>(conn, sql, args)?);
            Ok(out)
        })
        .and_then(|out| {
            conn.execute_batch("COMMIT")?;
            Ok(out)
        });
    if done.is_err() && !conn.is_autocommit() {
        // Still inside the transaction (a statement failed, or COMMIT did): end it, or the
        // next write would run inside it.
        if let Err(error) = conn.execute_batch("ROLLBACK") {
            tracing::debug!(%error, "no transaction left to roll back");
        }
    }
    done
}

/// `sql` from the connection's statement cache, with `args` bound: the shared SQL numbers its
/// parameters `$1`, `$2`, … (sqlx's style), and a statement may use any of them in any order,
/// so each placeholder is bound by its number rather than by position.
fn prepared<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    Ok(statement)
}

/// Binds every placeholder `$N` of `statement` to `args[N - 1]`.
fn bind(statement: &mut Statement<'_>, args: &[Arg<'_>]) -> Result<(), StoreError> {
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or_default();
        let arg = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| args.get(n))
            .ok_or_else(|| {
                StoreError::Sqlite(rusqlite::Error::InvalidParameterName(name.to_owned()))
            })?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Text(text) => ValueRef::Text(text.as_bytes()),
            Arg::Int(n) => ValueRef::Integer(n),
            Arg::Flag(flag) => ValueRef::Integer(i64::from(flag)),
            Arg::OptText(text) => text.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())),
            Arg::OptInt(n) => n.map_or(ValueRef::Null, ValueRef::Integer),
            Arg::OptBlob(bytes) => bytes.map_or(ValueRef::Null, ValueRef::Blob),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh file with one table, in WAL mode as the sqlx writer leaves it.
    fn fresh() -> (tempfile::TempDir, Direct) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT);",
            )
            .unwrap();
        let direct = Direct::open(&path, Duration::from_millis(100)).unwrap();
        (dir, direct)
    }

    struct Row {
        id: String,
        n: i64,
        note: Option<String>,
    }

    impl FromColumns for Row {
        fn from_columns<R: super::super::columns::Columns + ?Sized>(
            r: &R,
        ) -> Result<Self, sqlx::Error> {
            Ok(Self {
                id: r.text("id")?,
                n: r.int("n")?,
                note: r.opt_text("note")?,
            })
        }
    }

    const INSERT: &str = "INSERT INTO t (id, n, note) VALUES ($1, $2, $3)";
    const GET: &str = "SELECT id, n, note FROM t WHERE id = $1";

    #[test]
    fn placeholders_are_bound_by_their_number_whatever_their_order() {
        let (_dir, direct) = fresh();
        let args = [Arg::Int(7), Arg::Text("a"), Arg::OptText(None)];
        let changed = direct
            .write(|c| run(c, "INSERT INTO t (n, id, note) VALUES ($1, $2, $3)", &args))
            .unwrap();
        assert_eq!(changed, 1);
        // `$2` used before `$1`, and `$1` twice.
        let row: Row = direct
            .read(|c| {
                one(
                    c,
                    "SELECT id, n, note FROM t WHERE id = $2 AND n = $1 AND n = $1",
                    &args,
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!((row.id.as_str(), row.n, row.note), ("a", 7, None));
    }

    #[test]
    fn a_placeholder_without_its_argument_is_an_error_not_a_null() {
        let (_dir, direct) = fresh();
        let short = [Arg::Text("a"), Arg::Int(1)];
        let error = direct.write(|c| run(c, INSERT, &short)).unwrap_err();
        assert!(error.to_string().contains("$3"), "{error}");
        let none: Option<Row> = direct.read(|c| one(c, GET, &[Arg::Text("a")])).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn a_failed_statement_rolls_back_the_whole_transaction_and_writing_goes_on() {
        let (_dir, direct) = fresh();
        let args = [Arg::Text("a"), Arg::Int(1), Arg::OptText(Some("first"))];
        // The second statement inserts the same key again.
        let error = direct
            .write(|c| in_one_transaction::<()>(c, &[INSERT, INSERT], &args))
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
        let kept: Option<Row> = direct.read(|c| one(c, GET, &[Arg::Text("a")])).unwrap();
        assert!(kept.is_none(), "the first insert was rolled back");
        // The writer is out of the failed transaction: the next write commits on its own.
        direct.write(|c| run(c, INSERT, &args)).unwrap();
        let row: Row = direct
            .read(|c| one(c, GET, &[Arg::Text("a")]))
            .unwrap()
            .unwrap();
        assert_eq!(row.note.as_deref(), Some("first"));
    }

    /// The request writer checkpoints in batches of [`WAL_AUTOCHECKPOINT_PAGES`]: the WAL grows
    /// past SQLite's default of 1,000 pages, and no further than the larger batch.
    #[test]
    fn the_wal_is_checkpointed_in_larger_batches_and_stays_bounded() {
        let (dir, direct) = fresh();
        let wal = dir.path().join("t.db-wal");
        let page = 4096;
        let note = "x".repeat(2000);
        let mut largest = 0;
        // About two rows a page: some 6 × 4,000 pages of commits.
        for i in 0..48_000 {
            let id = format!("row{i}");
            let args = [Arg::Text(&id), Arg::Int(i), Arg::OptText(Some(&note))];
            direct.write(|c| run(c, INSERT, &args)).unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let pages = largest / page;
        assert!(
            pages > 1_500,
            "checkpointed at SQLite's default: {pages} pages"
        );
        assert!(
            pages <= WAL_AUTOCHECKPOINT_PAGES as u64 + 200,
            "the WAL outgrew its bound: {pages} pages"
        );
    }

    #[test]
    fn readers_cannot_write() {
        let (_dir, direct) = fresh();
        let args = [Arg::Text("a"), Arg::Int(1), Arg::OptText(None)];
        let error = direct.read(|c| run(c, INSERT, &args)).unwrap_err();
        assert!(matches!(error, StoreError::Sqlite(_)), "{error:?}");
    }

    /// With statistics in the file (an operator's `ANALYZE` or `PRAGMA optimize`; the bundled
    /// SQLite is built with STAT4), a statement whose plan could depend on a bound value is
    /// compiled again each time it is bound to another one. A benchmark on a million people
    /// showed that re-compiling as most of what `/userinfo` cost. The cached statements must
    /// run as compiled once.
    #[test]
    fn statistics_in_the_file_do_not_make_cached_statements_compile_again() {
        let (dir, _direct) = fresh();
        let path = dir.path().join("t.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "CREATE INDEX t_n ON t (n);                  WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 2000)                  INSERT INTO t SELECT 'id' || i, i % 7 + (i > 1900) * i, NULL FROM k;                  ANALYZE;",
            )
            .unwrap();
        drop(setup);
        // Opened after ANALYZE, as a process started on an analysed file would be.
        let direct = Direct::open(&path, Duration::from_millis(100)).unwrap();
        const BY_N: &str = "SELECT id, n, note FROM t WHERE n = $1 LIMIT 1";
        let compiled_again = direct
            .read(|c| {
                for n in [3, 1950, 5, 1990, 3] {
                    one::<Row>(c, BY_N, &[Arg::Int(n)])?;
                }
                let statement = c.prepare_cached(BY_N)?;
                Ok(statement.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .unwrap();
        assert_eq!(compiled_again, 0, "the statement was compiled again");
    }
}
