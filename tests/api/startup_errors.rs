//! Start-up failures end with one clear error, never a panic.

use crate::helpers::{backend, settings_for};
use crate::test_db::fresh_database;
use guildgate::config::Settings;
use guildgate::report::render;
use guildgate::startup::{Application, StartupError};
use guildgate::state::Clock;

async fn build(settings: Settings) -> Result<Application, StartupError> {
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
    let message = render(&err);
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

/// Settings whose database is a Postgres URL (with a password) where nothing listens.
fn unreachable_database(keys: &std::path::Path, connect_timeout: &str) -> Settings {
    let mut settings = settings_for(
        "postgres://nobody:pw@127.0.0.1:1/none",
        keys,
        "http://127.0.0.1:1",
        "",
    );
    settings.server.listen = "127.0.0.1:0".into();
    settings.database.connect_timeout = connect_timeout.into();
    settings
}

#[tokio::test]
async fn an_unreachable_database_stops_start_up_with_one_line() {
    // Arrange: nothing listens on port 1; no waiting.
    let keys = tempfile::tempdir().unwrap();
    let settings = unreachable_database(keys.path(), "0s");

    // Act
    let started = std::time::Instant::now();
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = render(&err);
    assert!(matches!(err, StartupError::Store(_)), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(!message.contains("pw@"), "password redacted: {message}");
    assert!(
        message.contains("postgres://nobody:***@127.0.0.1:1/none"),
        "names the URL: {message}"
    );
    assert!(message.contains("database.url"), "names the key: {message}");
    assert_eq!(
        message.matches("Connection refused").count(),
        1,
        "the cause once: {message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "fails promptly"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_retried_until_connect_timeout_then_named_once() {
    // Arrange
    let keys = tempfile::tempdir().unwrap();
    let settings = unreachable_database(keys.path(), "1s");

    // Act
    let started = std::time::Instant::now();
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = render(&err);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for the database: {message}"
    );
    assert!(
        message.contains("gave up after") && message.contains("database.connect_timeout"),
        "says it waited and which key sets how long: {message}"
    );
    assert_eq!(
        message.matches("Connection refused").count(),
        1,
        "{message}"
    );
    assert_eq!(message.matches("database.url").count(), 1, "{message}");
}

#[tokio::test]
async fn readyz_answers_503_and_healthz_200_while_start_up_waits_for_the_database() {
    // Arrange: a database that never comes, waited for long enough to probe.
    let keys = tempfile::tempdir().unwrap();
    let settings = unreachable_database(keys.path(), "20s");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let starting = tokio::spawn(Application::build_with_listener(
        settings,
        Clock::default(),
        Some(listener),
    ));
    let http = reqwest::Client::new();

    // Act: poll until the waiting server answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ready = loop {
        if let Ok(response) = http.get(format!("{address}/readyz")).send().await {
            break response;
        }
        assert!(std::time::Instant::now() < deadline, "nothing answered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let health = http.get(format!("{address}/healthz")).send().await.unwrap();
    let token = http.post(format!("{address}/token")).send().await.unwrap();

    // Assert
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(health.status(), 200);
    assert_eq!(token.status(), 503);
    assert!(token.headers().contains_key("retry-after"));
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    starting.abort();
}

#[tokio::test]
async fn a_port_in_use_stops_start_up_at_once_naming_the_setting() {
    // Arrange: the port is taken and the database would be waited for.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let mut settings = unreachable_database(keys.path(), "30s");
    settings.server.listen = addr.to_string();

    // Act
    let started = std::time::Instant::now();
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = render(&err);
    assert!(matches!(err, StartupError::Bind { .. }), "{message}");
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.contains("server.listen") && message.contains("GUILDGATE__SERVER__LISTEN"),
        "says how to change it: {message}"
    );
    assert_eq!(
        message.matches("Address already in use").count(),
        1,
        "the cause once: {message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "reported before waiting for the database"
    );
}

#[tokio::test]
async fn an_unreadable_key_file_is_named_with_its_mode() {
    // Arrange: a folder where a key file should be (unreadable as a file, even for root).
    let db = fresh_database(backend()).await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("1700000000.pem");
    std::fs::create_dir(&key_file).unwrap();
    let mut settings = settings_for(&db.url, keys.path(), "http://127.0.0.1:1", "");
    settings.server.listen = "127.0.0.1:0".into();

    // Act
    let err = build(settings).await.err().expect("start-up must fail");

    // Assert
    let message = render(&err);
    assert!(matches!(err, StartupError::KeyFile { .. }), "{message}");
    assert!(
        message.contains("1700000000.pem"),
        "names the file: {message}"
    );
    assert!(message.contains("mode 0"), "shows its mode: {message}");
    assert!(message.contains("keys.dir"), "names the key: {message}");
    assert!(!message.contains('\n'), "{message}");
}
