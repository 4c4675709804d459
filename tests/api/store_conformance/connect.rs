//! Connecting and migrating: both backends start from an empty database.

use super::fixture;
use crate::test_db::backends;
use guildgate::store::{StoreError, connect};

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
    assert!(matches!(error, StoreError::Backend(_)), "got {error:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    assert!(!error.to_string().contains("hunter2"));
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
