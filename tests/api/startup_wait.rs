//! `guildgate serve` started before its database (the usual compose or Kubernetes order) comes
//! up on its own once the database does, without a restart.
//!
//! The machine's Postgres is never stopped: the binary is pointed at a loopback port where
//! nothing listens, and the test later starts a TCP forwarder on that port to the real server.

use crate::test_db::{Backend, POSTGRES_URL_VAR, fresh_database};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the database stays away after the binary starts (the ten seconds).
const DATABASE_LATE_BY: Duration = Duration::from_secs(10);
/// The whole test is bounded by this.
const TEST_BOUND: Duration = Duration::from_secs(45);
/// Between polls of the binary (never a long sleep: the test drives the wait by polling).
const POLL: Duration = Duration::from_millis(100);

/// Kills the binary when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts on `listener` and pipes every connection to `target`, until the test ends.
async fn forward(listener: tokio::net::TcpListener, target: String) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_started_ten_seconds_before_postgres_serves_requests_without_a_restart() {
    // Arrange
    let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: set {POSTGRES_URL_VAR} to run the start-before-Postgres test");
        return;
    };
    let db = fresh_database(Backend::Postgres).await;
    let real = url::Url::parse(&admin).unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(5432)
    );
    let late_port = free_port();
    let mut late_url = url::Url::parse(&db.url).unwrap();
    late_url.set_host(Some("127.0.0.1")).unwrap();
    late_url.set_port(Some(late_port)).unwrap();
    let app_port = free_port();
    let address = format!("http://127.0.0.1:{app_port}");
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildgate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GUILDGATE_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let started = Instant::now();
    let child = command
        .arg("serve")
        .current_dir(dir.path())
        .env("GUILDGATE__ISSUER", &address)
        .env("GUILDGATE__SERVER__LISTEN", format!("127.0.0.1:{app_port}"))
        .env("GUILDGATE__DATABASE__URL", late_url.as_str())
        .env("GUILDGATE__DATABASE__CONNECT_TIMEOUT", "40s")
        .env("GUILDGATE__KEYS__DIR", dir.path().join("keys"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the guildgate binary starts");
    let mut running = Running(child);
    let http = reqwest::Client::new();
    let stderr = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();

    // Act 1: the database is away; probes get answers meanwhile.
    let mut waiting_answers = Vec::new();
    while started.elapsed() < DATABASE_LATE_BY {
        if let Ok(response) = http.get(format!("{address}/readyz")).send().await {
            waiting_answers.push(response.status().as_u16());
        }
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "guildgate exited while waiting:\n{}",
            stderr()
        );
        tokio::time::sleep(POLL).await;
    }
    // Act 2: the database comes up.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", late_port))
        .await
        .unwrap();
    let forwarder = tokio::spawn(forward(listener, target));
    let ready = loop {
        match http.get(format!("{address}/readyz")).send().await {
            Ok(response) if response.status() == 200 => break response,
            _ => {}
        }
        assert!(
            started.elapsed() < TEST_BOUND,
            "not ready within {TEST_BOUND:?}:\n{}",
            stderr()
        );
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "guildgate exited:\n{}",
            stderr()
        );
        tokio::time::sleep(POLL).await;
    };
    let discovery = http
        .get(format!("{address}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();

    // Assert
    assert!(
        !waiting_answers.is_empty() && waiting_answers.iter().all(|s| *s == 503),
        "/readyz answered 503 while waiting: {waiting_answers:?}"
    );
    assert_eq!(ready.status(), 200);
    assert_eq!(discovery.status(), 200);
    let metadata: serde_json::Value = discovery.json().await.unwrap();
    assert_eq!(metadata["issuer"], address.as_str());
    assert!(
        running.0.try_wait().unwrap().is_none(),
        "the same process serves"
    );
    let log = stderr();
    let waiting_lines = log.matches("database not reachable yet").count();
    assert!(
        (1..=4).contains(&waiting_lines),
        "one waiting line every few seconds, not one per attempt ({waiting_lines}):\n{log}"
    );
    forwarder.abort();
    drop(running);
}
