//! The thread that runs Postgres statements to completion, apart from the HTTP workers.
//!
//! A statement holds a pooled connection from the moment it is sent until its task reads the
//! answer. On an HTTP worker, the task that sent it waits for that read behind every request
//! the worker has ready, RSA signatures among them, so under load a connection stayed taken
//! for milliseconds after Postgres had answered in a fraction of one. With 64 refreshes at
//! once the pool's 16 connections were all taken that way while both cores were 17 % idle,
//! and the rate stayed the same from 8 concurrent refreshes to 128 (BENCHMARKS.md, thirteenth
//! session). Here a thread with nothing else to do reads each answer as it arrives and gives
//! the connection back at once; the worker gets the rows.

use super::kept::KeptPool;
use super::{Arg, StoreError};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::query::Query;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Handle;

/// An [`Arg`] that owns its value, to travel to the statement thread.
#[derive(Debug)]
enum OwnedArg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
    OptBlob(Option<Vec<u8>>),
}

impl OwnedArg {
    fn of(arg: &Arg<'_>) -> Self {
        match *arg {
            Arg::Text(t) => Self::Text(t.to_owned()),
            Arg::OptText(t) => Self::OptText(t.map(str::to_owned)),
            Arg::Int(i) => Self::Int(i),
            Arg::OptInt(i) => Self::OptInt(i),
            Arg::Flag(f) => Self::Flag(f),
            Arg::OptBlob(b) => Self::OptBlob(b.map(<[u8]>::to_vec)),
        }
    }

    fn as_arg(&self) -> Arg<'_> {
        match self {
            Self::Text(t) => Arg::Text(t),
            Self::OptText(t) => Arg::OptText(t.as_deref()),
            Self::Int(i) => Arg::Int(*i),
            Self::OptInt(i) => Arg::OptInt(*i),
            Self::Flag(f) => Arg::Flag(*f),
            Self::OptBlob(b) => Arg::OptBlob(b.as_deref()),
        }
    }
}

/// The process's statement thread, started on first use; `None` when it could not be started
/// (statements then run on the caller's thread, as they would without it).
fn statement_thread() -> Option<&'static Handle> {
    static THREAD: OnceLock<Option<Handle>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new()
                .name("guildgate-pg".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = tx.send(Some(runtime.handle().clone()));
                            // Lives as long as the process: its tasks are the statements.
                            runtime.block_on(std::future::pending::<()>());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "no Postgres statement thread; statements run on the HTTP workers");
                            let _ = tx.send(None);
                        }
                    }
                });
            match started {
                Ok(_) => rx.recv().ok().flatten(),
                Err(error) => {
                    tracing::warn!(%error, "no Postgres statement thread; statements run on the HTTP workers");
                    None
                }
            }
        })
        .as_ref()
}

/// How a statement is run, and what it gives back.
pub(super) trait Fetch {
    /// What the statement gives back.
    type Out: Send + 'static;
    /// Runs `query` on `connection`.
    fn fetch<'q>(
        query: Query<'q, Postgres, PgArguments>,
        connection: &'q mut PgConnection,
    ) -> impl Future<Output = Result<Self::Out, sqlx::Error>> + Send + 'q;
}

/// The statement's first row, if any.
pub(super) struct FirstRow;

impl Fetch for FirstRow {
    type Out = Option<PgRow>;
    fn fetch<'q>(
        query: Query<'q, Postgres, PgArguments>,
        connection: &'q mut PgConnection,
    ) -> impl Future<Output = Result<Self::Out, sqlx::Error>> + Send + 'q {
        query.fetch_optional(connection)
    }
}

/// All the statement's rows.
pub(super) struct AllRows;

impl Fetch for AllRows {
    type Out = Vec<PgRow>;
    fn fetch<'q>(
        query: Query<'q, Postgres, PgArguments>,
        connection: &'q mut PgConnection,
    ) -> impl Future<Output = Result<Self::Out, sqlx::Error>> + Send + 'q {
        query.fetch_all(connection)
    }
}

/// How many rows the statement changed.
pub(super) struct Changed;

impl Fetch for Changed {
    type Out = u64;
    async fn fetch<'q>(
        query: Query<'q, Postgres, PgArguments>,
        connection: &'q mut PgConnection,
    ) -> Result<Self::Out, sqlx::Error> {
        Ok(query.execute(connection).await?.rows_affected())
    }
}

/// Runs `sql` with `args` on a connection of `pool`, on the statement thread, as `F` says. A
/// caller that goes away leaves the statement to finish: it is never cut off mid-way. The
/// connection is kept for the next statement when this one was answered in full; after an
/// error it goes back to the pool, whose ping on its return finds out whether it still works.
pub(super) async fn run<F: Fetch>(
    pool: &KeptPool,
    sql: &'static str,
    args: &[Arg<'_>],
) -> Result<F::Out, StoreError> {
    let pool = pool.clone();
    let owned: Vec<OwnedArg> = args.iter().map(OwnedArg::of).collect();
    let work = async move {
        let args: Vec<Arg<'_>> = owned.iter().map(OwnedArg::as_arg).collect();
        let mut connection = pool.take().await?;
        let answer = F::fetch(bind(sqlx::query(sql), &args), &mut connection).await;
        match answer {
            Ok(_) => pool.keep(connection),
            // Back to the pool, whose ping on its return finds out whether it still works.
            Err(_) => drop(connection),
        }
        answer
    };
    Ok(on_statement_thread(work).await??)
}

/// Drops `value` on the statement thread, for what must be dropped where Tokio runs (a pooled
/// connection hands itself back on a task). Without that thread it is leaked instead: a
/// panic in a destructor would be worse.
pub(super) fn drop_on_statement_thread<T: Send + 'static>(value: T) {
    match statement_thread() {
        Some(thread) => {
            thread.spawn(async move { drop(value) });
        }
        None => std::mem::forget(value),
    }
}

/// Runs `work` on the statement thread (on the caller's when there is none). The pools are
/// made there too, so the connections they open answer to that thread's event loop rather
/// than to a busy HTTP worker's.
pub(super) async fn on_statement_thread<R: Send + 'static>(
    work: impl Future<Output = R> + Send + 'static,
) -> Result<R, StoreError> {
    match statement_thread() {
        Some(thread) => thread
            .spawn(work)
            .await
            .map_err(|e| StoreError::Abandoned(format!("a Postgres statement: {e}"))),
        None => Ok(work.await),
    }
}

/// `query` with `args` bound in order, as `$1`, `$2`, … (sqlx's side of [`Arg`]).
pub(super) fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    args: &[Arg<'q>],
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        query = match *arg {
            Arg::Text(text) => query.bind(text),
            Arg::OptText(text) => query.bind(text),
            Arg::Int(n) => query.bind(n),
            Arg::OptInt(n) => query.bind(n),
            Arg::Flag(flag) => query.bind(flag),
            Arg::OptBlob(bytes) => query.bind(bytes),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::super::test_db::ThrowawayDb;
    use super::super::{OnPool, PgStore};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// A statement sent from a worker that then stays busy gives its connection back without
    /// that worker: another thread's statement gets the pool's only connection while the
    /// first worker is still busy. Without the statement thread the connection waits for the
    /// busy worker, and the second statement times out (5 s) instead.
    #[tokio::test]
    async fn a_busy_worker_does_not_keep_its_connection_after_the_answer() {
        let Some(db) = ThrowawayDb::create().await else {
            return;
        };
        let store = PgStore::connect(&db.url, 1).await.unwrap();
        let first = {
            let store = store.clone();
            tokio::spawn(async move {
                OnPool(&store.pool)
                    .write("SELECT pg_sleep(0.05)", &[])
                    .await
            })
        };
        // The first statement is on its way once its task has run (this runtime has one thread).
        tokio::task::yield_now().await;
        let second_done = Arc::new(AtomicBool::new(false));
        let second = {
            let store = store.clone();
            let done = second_done.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let answer = runtime.block_on(OnPool(&store.pool).write("SELECT 1", &[]));
                done.store(true, Ordering::Release);
                answer
            })
        };
        // This worker stays busy (it never yields) until the second statement is answered.
        let busy_since = Instant::now();
        while !second_done.load(Ordering::Acquire) && busy_since.elapsed() < Duration::from_secs(8)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let answered_while_busy = second_done.load(Ordering::Acquire);
        assert!(
            second.join().unwrap().is_ok(),
            "the second statement failed"
        );
        assert!(first.await.unwrap().is_ok());
        assert!(
            answered_while_busy,
            "the second statement waited for the busy worker to give the connection back"
        );
        db.drop_database().await;
    }
}
