//! Start-up failures end with one clear error, never a panic.

use crate::helpers::{backend, settings_for};
use crate::test_db::fresh_database;
use guildgate::startup::{Application, StartupError};
use guildgate::state::Clock;

async fn build(settings: guildgate::config::Settings) -> Result<Application, StartupError> {
    Application::build(settings, Clock::default()).await
}

#[tokio::test]
async fn a_corrupt_key_file_stops_start_up_and_is_not_replaced() {
    // Arrange
    let db = fresh_database(backend()).await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("1700000000.pem");
    std::fs::write(
        &key_file,
        "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut settings = settings_for(&db.url, keys.path(), "http://127.0.0.1:1", "");
    settings.server.listen = "127.0.0.1:0".into();

    // Act
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = err.to_string();
    assert!(matches!(err, StartupError::Keys(_)), "{message}");
    assert!(
        message.contains("1700000000.pem"),
        "names the file: {message}"
    );
    assert!(
        std::fs::read_to_string(&key_file)
            .unwrap()
            .contains("garbage"),
        "left untouched"
    );
}

#[tokio::test]
async fn an_unreachable_database_stops_start_up_with_one_line() {
    // Arrange: nothing listens on port 1.
    let keys = tempfile::tempdir().unwrap();
    let mut settings = settings_for(
        "postgres://nobody:pw@127.0.0.1:1/none",
        keys.path(),
        "http://127.0.0.1:1",
        "",
    );
    settings.server.listen = "127.0.0.1:0".into();

    // Act
    let started = std::time::Instant::now();
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = err.to_string();
    assert!(matches!(err, StartupError::Store(_)), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(!message.contains("pw@"), "password redacted: {message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "fails promptly"
    );
}

#[tokio::test]
async fn a_port_in_use_stops_start_up_with_one_line() {
    // Arrange
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let db = fresh_database(backend()).await;
    let keys = tempfile::tempdir().unwrap();
    let mut settings = settings_for(&db.url, keys.path(), "http://127.0.0.1:1", "");
    settings.server.listen = addr.to_string();

    // Act
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = err.to_string();
    assert!(matches!(err, StartupError::Bind { .. }), "{message}");
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(!message.contains('\n'), "{message}");
}
