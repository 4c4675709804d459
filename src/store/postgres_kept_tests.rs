//! The kept connections (`postgres_kept.rs`) on a real database: one round trip per statement,
//! and a pool whose every connection the statements keep still serves a transaction.

use super::kept::{KEEP_IDLE, KeptPool, LEASE};
use super::test_db::ThrowawayDb;
use super::{OnPool, PgStore, StoreError};
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for a connection the pool should hand out at once.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A store on a throwaway database with a pool of `max` connections (and a transient pool of
/// half as many), or `None` when no cluster is named.
async fn store_with_connections(max: u32) -> Option<(ThrowawayDb, PgStore)> {
    let db = ThrowawayDb::create().await?;
    let store = PgStore::connect(&db.url, max).await.unwrap();
    Some((db, store))
}

/// A TCP relay in front of the test database that counts the server's `ReadyForQuery`
/// messages: one for every round trip a client waits on (a statement's `Sync`, a ping's).
struct Relay {
    url: String,
    ready_for_query: Arc<AtomicUsize>,
}

impl Relay {
    /// A relay to the test database's server, or `None` when its URL names no TCP host.
    async fn in_front_of(db: &ThrowawayDb) -> Option<Self> {
        let mut url = url::Url::parse(&db.url).unwrap();
        let Some(host) = url.host_str().map(str::to_owned) else {
            eprintln!("skipped: the test database is not reached over TCP");
            return None;
        };
        let server = format!("{host}:{}", url.port().unwrap_or(5432));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let ready_for_query = Arc::new(AtomicUsize::new(0));
        let counted = ready_for_query.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&server).await.unwrap();
                tokio::spawn(relay(client, server, counted.clone()));
            }
        });
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        Some(Self {
            url: url.to_string(),
            ready_for_query,
        })
    }

    fn round_trips(&self) -> usize {
        self.ready_for_query.load(Ordering::SeqCst)
    }
}

/// Copies both ways; the server's side is read message by message (a type byte, then a length
/// that counts itself) to count the `Z`s before passing them on.
async fn relay(client: TcpStream, server: TcpStream, ready_for_query: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    loop {
        let mut header = [0u8; 5];
        if server_read.read_exact(&mut header).await.is_err() {
            return;
        }
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        if server_read.read_exact(&mut body).await.is_err() {
            return;
        }
        if header[0] == b'Z' {
            ready_for_query.fetch_add(1, Ordering::SeqCst);
        }
        if client_write.write_all(&header).await.is_err()
            || client_write.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

/// Ten statements one after the other take ten round trips: the connection each leaves is
/// kept for the next instead of going back to sqlx's pool, which pings it on its way back
/// (twenty round trips before).
#[tokio::test]
async fn a_statement_costs_one_round_trip_not_two() {
    let Some(db) = ThrowawayDb::create().await else {
        return;
    };
    let Some(relay) = Relay::in_front_of(&db).await else {
        return db.drop_database().await;
    };
    let store = PgStore::connect(&relay.url, 1).await.unwrap();
    OnPool(&store.pool).write("SELECT 1", &[]).await.unwrap();
    let before = relay.round_trips();
    for _ in 0..10 {
        OnPool(&store.pool).write("SELECT 1", &[]).await.unwrap();
    }
    let taken = relay.round_trips() - before;
    // On a slow machine a sweep or the lease's end may hand the connection back in between
    // (one ping each).
    assert!(
        (10..=13).contains(&taken),
        "ten statements took {taken} round trips"
    );
    db.drop_database().await;
}

/// A kept connection counts as idle, and goes back to the pool once nobody asked for it within
/// `KEEP_IDLE` (here one sweep driven by hand), where a transaction takes it at once.
#[tokio::test]
async fn a_kept_connection_nobody_asks_for_goes_back_to_the_pool() {
    let Some((db, store)) = store_with_connections(1).await else {
        return;
    };
    store.pool.sweep_by_hand();
    let before = Instant::now();
    OnPool(&store.pool).write("SELECT 1", &[]).await.unwrap();
    assert_eq!(store.pool.kept_count(), 1);
    let usage = store.pool.usage();
    assert_eq!((usage.size, usage.idle), (1, 1), "kept is idle, not in use");

    assert_eq!(store.pool.sweep(before), 1, "not stale yet");
    assert_eq!(store.pool.sweep(Instant::now() + KEEP_IDLE), 0);
    let taken = tokio::time::timeout(PROMPTLY, store.pool.pool().acquire()).await;
    assert!(
        matches!(taken, Ok(Ok(_))),
        "the pool's only connection did not come back"
    );
    db.drop_database().await;
}

/// With statements running back to back on a pool of one connection, a transaction still gets
/// it: the statements hand it back to the pool at the end of its lease.
#[tokio::test]
async fn busy_statements_give_the_pools_connection_back_within_their_lease() {
    let Some((db, store)) = store_with_connections(1).await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answered = 0u32;
            while !stop.load(Ordering::Relaxed) {
                OnPool(&store.pool).write("SELECT 1", &[]).await.unwrap();
                answered += 1;
            }
            answered
        })
    };
    OnPool(&store.pool).write("SELECT 1", &[]).await.unwrap();
    let asked = Instant::now();
    let transaction = tokio::time::timeout(PROMPTLY, store.pool.pool().begin()).await;
    let waited = asked.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(
        matches!(transaction, Ok(Ok(_))),
        "no connection for the transaction"
    );
    assert!(waited < LEASE * 4, "the transaction waited {waited:?}");
    drop(transaction);
    assert!(busy.await.unwrap() > 0);
    db.drop_database().await;
}

/// Many more statements at once than connections: every one is answered, each connection
/// going from one to the next, and no more are kept than the pool has.
#[tokio::test]
async fn more_statements_than_connections_are_all_answered() {
    let Some((db, store)) = store_with_connections(2).await else {
        return;
    };
    let statements: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                OnPool(&store.pool)
                    .write("SELECT pg_sleep(0.001)", &[])
                    .await
            })
        })
        .collect();
    for statement in statements {
        assert!(statement.await.unwrap().is_ok());
    }
    assert!(store.pool.kept_count() <= 2);
    assert!(store.pool.pool().size() <= 2);
    db.drop_database().await;
}

/// A statement that fails gives its connection back to the pool (whose ping finds out whether
/// it still works) rather than keeping it; the next statement is answered.
#[tokio::test]
async fn a_failed_statement_does_not_keep_its_connection() {
    let Some((db, store)) = store_with_connections(1).await else {
        return;
    };
    store.pool.sweep_by_hand();
    assert!(OnPool(&store.pool).write("SELECT 1/0", &[]).await.is_err());
    assert_eq!(store.pool.kept_count(), 0);
    assert!(OnPool(&store.pool).write("SELECT 1", &[]).await.is_ok());
    assert_eq!(store.pool.kept_count(), 1);
    db.drop_database().await;
}

/// A connection dropped however it was (a statement's task that panicked, say) counts as given
/// back: a statement that was waiting for the pool's only connection takes it from the pool.
#[tokio::test]
async fn a_connection_dropped_without_being_kept_lets_the_waiting_statement_go_on() {
    let Some((db, store)) = store_with_connections(1).await else {
        return;
    };
    let taken = store.pool.take().await.unwrap();
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { OnPool(&store.pool).write("SELECT 1", &[]).await })
    };
    // The waiting statement is queued for a handed-over connection once its task has run.
    tokio::task::yield_now().await;
    drop(taken);
    let answered = tokio::time::timeout(PROMPTLY, waiting).await;
    assert!(
        matches!(answered, Ok(Ok(Ok(_)))),
        "the statement still waits for a connection nobody holds"
    );
    db.drop_database().await;
}

/// A pool of one connection that waits at most `acquire_timeout` for it, to `url`.
fn one_connection_pool(url: &str, acquire_timeout: Duration) -> KeptPool {
    KeptPool::new(
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_lazy(url)
            .unwrap(),
    )
}

/// Whether `answer` is the pool's timeout, as a statement that found no connection gets.
fn timed_out(answer: &Result<u64, StoreError>) -> bool {
    matches!(answer, Err(StoreError::Backend(sqlx::Error::PoolTimedOut)))
}

/// A statement waiting for a connection another statement holds gives up at the pool's acquire
/// timeout, as it would waiting in the pool: it does not wait for as long as the other holds it.
#[tokio::test]
async fn a_statement_waiting_for_a_held_connection_gives_up_at_the_acquire_timeout() {
    let Some(db) = ThrowawayDb::create().await else {
        return;
    };
    let pool = one_connection_pool(&db.url, Duration::from_millis(300));
    let taken = pool.take().await.unwrap();
    let answer = tokio::time::timeout(PROMPTLY, OnPool(&pool).write("SELECT 1", &[])).await;
    drop(taken);
    assert!(
        matches!(&answer, Ok(a) if timed_out(a)),
        "the statement waited for the held connection beyond the acquire timeout: {answer:?}"
    );
    // The count is whole again: the next statement gets the connection.
    assert!(OnPool(&pool).write("SELECT 1", &[]).await.is_ok());
    db.drop_database().await;
}

/// While the database cannot be reached, statements queued behind each other for the pool's
/// connections all give up within one acquire timeout of being asked, not one after another
/// (the last after three): requests during an outage answer 503 in bounded time.
#[tokio::test]
async fn during_an_outage_queued_statements_all_give_up_within_one_acquire_timeout() {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wait = Duration::from_secs(1);
    let pool = one_connection_pool(
        &format!("postgres://postgres@127.0.0.1:{closed_port}/postgres"),
        wait,
    );
    let asked = Instant::now();
    let statements: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let answer = OnPool(&pool).write("SELECT 1", &[]).await;
                (answer, asked.elapsed())
            })
        })
        .collect();
    for statement in statements {
        let (answer, took) = statement.await.unwrap();
        assert!(timed_out(&answer), "{answer:?}");
        assert!(
            took < wait * 2,
            "a queued statement answered after {took:?}, the pool waits {wait:?}"
        );
    }
}
