//! Memory under a flood of wrong client secrets, measured on a separate guildgate process (the
//! real binary), so the test runner's own allocations do not blur the number.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What argon2 may hold per concurrent verification (m = 19 MiB) plus some slack.
const PER_VERIFICATION: u64 = 20 * 1024 * 1024;
/// The issue's bound, for up to three cores (one argon2 run at a time). `VmHWM` counts the
/// pages of the debug binary it touched too (about 18 MiB of the 21 MiB an idle server has).
const BOUND: u64 = 64 * 1024 * 1024;

/// A `guildgate serve` child process, killed when dropped.
struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the binary with SQLite, one argon2 client, and failure limits high enough that
    /// every wrong secret reaches argon2 (so this measures argon2's bound, not the limiter's).
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("http://127.0.0.1:{port}");
        let hash = guildgate::clients::hash_secret("the-real-secret").expect("hash");
        let config = format!(
            r#"issuer = "{address}"
[server]
listen = "127.0.0.1:{port}"
[log]
level = "error"
[database]
url = "sqlite://{db}"
[keys]
dir = "{keys}"
[limits]
failed_auth_per_ip = "100000/min"
failed_auth_per_client = "100000/min"
[[clients]]
id = "app"
secret_hash = "{hash}"
redirect_uris = ["https://app.example.com/cb"]
"#,
            db = dir.path().join("guildgate.db").display(),
            keys = dir.path().join("keys").display(),
        );
        let file = dir.path().join("guildgate.toml");
        std::fs::write(&file, config).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_guildgate"))
            .arg("--config")
            .arg(&file)
            .arg("serve")
            .env_remove("GUILDGATE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("guildgate starts");
        let server = Self {
            child,
            address,
            _dir: dir,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&self) {
        let started = Instant::now();
        let http = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(30) {
            let ready = http
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("guildgate did not answer /readyz within 30 s");
    }

    /// The peak resident set size so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in kB");
        kib * 1024
    }
}

#[tokio::test]
async fn two_hundred_concurrent_wrong_secrets_keep_memory_bounded_and_userinfo_answering() {
    // Arrange
    let server = Server::start().await;
    let http = reqwest::Client::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    // argon2 runs once per two cores at a time: each run beyond the first may add its area.
    let bound = BOUND + (cores / 2).saturating_sub(1) * PER_VERIFICATION;

    // Act: 200 at once, half a wrong secret for the real client, half an unknown client (the
    // decoy hash costs the same).
    let flood = (0..200).map(|i| {
        let http = http.clone();
        let url = format!("{}/token", server.address);
        async move {
            let id = if i % 2 == 0 {
                "app".to_owned()
            } else {
                format!("stranger-{i}")
            };
            http.post(url)
                .basic_auth(id, Some(format!("wrong-secret-{i}")))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("redirect_uri", "https://app.example.com/cb"),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let started = Instant::now();
    let statuses = futures_join_all(flood).await;
    let took = started.elapsed();
    let peak = server.peak_rss();
    let userinfo = http
        .get(format!("{}/userinfo", server.address))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("/userinfo answers");

    // Assert
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(401))),
        "every wrong secret is refused: {statuses:?}"
    );
    assert!(
        peak < bound,
        "peak RSS {} MiB, bound {} MiB ({cores} cores), flood took {took:?}",
        peak / 1024 / 1024,
        bound / 1024 / 1024
    );
    assert_eq!(userinfo.status(), 401, "/userinfo still answers");
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("request task"));
    }
    out
}
