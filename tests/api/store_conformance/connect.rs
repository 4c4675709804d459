//! Connecting and migrating: both backends start from an empty database.

use super::fixture;
use crate::test_db::backends;
use guildgate::store::{StoreError, connect, connect_waiting};

#[tokio::test]
async fn migrate_is_idempotent() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.migrate().await.expect("second migrate is a no-op");
        t.store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn connect_creates_a_missing_sqlite_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/deeper/guildgate.db");

    let store = connect(&format!("sqlite://{}", file.display()), 2)
        .await
        .unwrap();

    store.migrate().await.unwrap();
    assert!(file.exists());
}

#[tokio::test]
async fn connect_fails_fast_with_the_reason_when_postgres_is_unreachable() {
    let started = std::time::Instant::now();

    let result = connect("postgres://postgres:hunter2@127.0.0.1:1/none", 2).await;

    let Err(error) = result else {
        panic!("nothing listens on port 1")
    };
    assert!(matches!(error, StoreError::Connect(_)), "got {error:?}");
    assert!(error.is_unavailable(), "a refused connection may heal");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("postgres://postgres:***@127.0.0.1:1/none"),
        "names the masked URL: {message}"
    );
}

#[tokio::test]
async fn connect_waiting_retries_an_unreachable_database_until_its_timeout() {
    let started = std::time::Instant::now();

    let result = connect_waiting(
        "postgres://postgres@127.0.0.1:1/none",
        2,
        std::time::Duration::from_millis(1200),
    )
    .await;

    let Err(StoreError::Connect(error)) = result else {
        panic!("nothing listens on port 1")
    };
    assert!(
        error.attempts >= 3,
        "250 ms, 500 ms, then the deadline: {} attempts",
        error.attempts
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(1200));
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert!(
        error.to_string().contains("database.connect_timeout"),
        "{error}"
    );
}

#[tokio::test]
async fn connect_waiting_does_not_retry_a_sqlite_file_that_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the database file should be: SQLite cannot open it, and waiting won't help.
    let file = dir.path().join("guildgate.db");
    std::fs::create_dir(&file).unwrap();
    let started = std::time::Instant::now();

    let result = connect_waiting(
        &format!("sqlite://{}", file.display()),
        2,
        std::time::Duration::from_secs(30),
    )
    .await;

    let Err(error) = result else {
        panic!("a folder is not a database file")
    };
    assert!(!error.is_unavailable(), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(error.to_string().contains("database.url"), "{error}");
}

#[tokio::test]
async fn connect_rejects_an_unsupported_scheme_without_leaking_the_password() {
    let result = connect("mysql://root:hunter2@localhost/db", 2).await;

    let Err(error) = result else {
        panic!("mysql is not supported")
    };
    assert!(
        matches!(error, StoreError::UnsupportedUrl(_)),
        "got {error:?}"
    );
    assert!(!error.to_string().contains("hunter2"));
}
