//! The re-check's single flight across real processes: two `guildgate serve` of one deployment
//! (one Postgres database, one keys folder, the test's fake Discord) re-check one person at the
//! same moment, and Discord's rotating refresh token is spent once.

use crate::browser::{Browser, query_of};
use crate::helpers::BOB;
use crate::test_db::{Backend, POSTGRES_URL_VAR, TestDb, fresh_database};
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle, FakeRoute, Fault};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COMMUNITY: &str = "812345678901234567";
const APPS: [(&str, &str); 3] = [
    ("wiki", "wiki-secret-wiki-secret"),
    ("forum", "forum-secret-forum-secret"),
    ("chat", "chat-secret-chat-secret"),
];

/// One `guildgate serve` process, killed when dropped.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:{port}`.
    pub address: String,
}

impl Process {
    /// Kills the process at once (SIGKILL: no clean shutdown, as when a machine dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deployment: its config file, database, keys folder and fake Discord.
pub struct Deployment {
    /// The issuer (process A's address).
    pub issuer: String,
    /// Its port.
    pub issuer_port: u16,
    config: std::path::PathBuf,
    /// The fake Discord every process uses.
    pub discord: FakeDiscordHandle,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Deployment {
    async fn new() -> Self {
        Self::with(|_| String::new()).await
    }

    /// A deployment whose config file ends with `extra(&fake_discord)` (more sections, keys).
    pub async fn with(extra: impl FnOnce(&FakeDiscordHandle) -> String) -> Self {
        let db = fresh_database(Backend::Postgres).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer_port = free_port();
        let issuer = format!("http://127.0.0.1:{issuer_port}");
        let mut data = FakeData::demo().expect("demo data");
        data.redirect_uris = vec![format!("{issuer}/callback/discord")];
        let discord = FakeDiscord::start(data.clone()).expect("fake Discord");
        // Discord access tokens that have expired by the time anyone refreshes.
        discord.set_access_token_ttl(Duration::from_secs(1));
        let clients: String = APPS
            .iter()
            .map(|(id, secret)| {
                format!(
                    "[[clients]]\nid = \"{id}\"\nsecret = \"{secret}\"\n\
                     redirect_uris = [\"https://{id}.example.com/cb\"]\n\
                     allowed_guilds = [\"{COMMUNITY}\"]\nrefresh_tokens = true\n"
                )
            })
            .collect();
        let config = format!(
            "issuer = \"{issuer}\"\n[log]\nlevel = \"error\"\n\
             [database]\nurl = \"{db}\"\n[keys]\ndir = \"{keys}\"\n\
             [discord]\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n\
             authorize_url = \"{authorize}\"\napi_base_url = \"{api}\"\nmembership_ttl = \"1s\"\n\
             [secrets]\nencryption_key = \"{key}\"\n{clients}",
            db = db.url,
            keys = dir.path().join("keys").display(),
            id = data.client_id,
            secret = data.client_secret,
            authorize = discord.authorize_url(),
            api = discord.api_base_url(),
            key = "ef".repeat(32),
        );
        let config = format!("{config}\n{}", extra(&discord));
        let file = dir.path().join("guildgate.toml");
        std::fs::write(&file, config).expect("config");
        Self {
            issuer,
            issuer_port,
            config: file,
            discord,
            _db: db,
            _dir: dir,
        }
    }

    /// Starts a process listening on `port`, and waits until it is ready.
    pub async fn start(&self, port: u16) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_guildgate"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("GUILDGATE_CONFIG")
            .env("GUILDGATE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("guildgate starts");
        let process = Process {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = http
                .get(format!("{}/readyz", process.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("guildgate on port {port} did not become ready");
    }
}

async fn refresh(process: &Process, app: (&str, &str), token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/token", process.address))
        .basic_auth(app.0, Some(app.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn two_processes_refreshing_one_person_at_once_spend_the_discord_token_once() {
    if std::env::var_os(POSTGRES_URL_VAR).is_none() {
        println!("skipped: several processes need Postgres ({POSTGRES_URL_VAR} is not set)");
        return;
    }
    // Arrange: process A serves the issuer's address, B another; Bob signs in to three apps.
    let deployment = Deployment::new().await;
    let a = deployment.start(deployment.issuer_port).await;
    let b = deployment.start(free_port()).await;
    let mut browser = Browser::new();
    let mut tokens = Vec::new();
    for app in APPS {
        let redirect = format!("https://{}.example.com/cb", app.0);
        let url = format!(
            "{}/authorize?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=s",
            deployment.issuer, app.0
        );
        let mut page = browser.get(&url).await;
        if page
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(deployment.discord.base_url().as_str()))
        {
            deployment.discord.sign_in_as(Some(BOB));
            let back = browser.get(&page.location.unwrap()).await;
            page = browser
                .get(&back.location.expect("back from Discord"))
                .await;
        }
        let location = page
            .location
            .unwrap_or_else(|| panic!("a redirect to {}: {} {}", app.0, page.status, page.body));
        let code = query_of(&location)["code"].clone();
        let response = reqwest::Client::new()
            .post(format!("{}/token", a.address))
            .basic_auth(app.0, Some(app.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        tokens.push(
            body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        );
    }
    // The snapshot (membership_ttl = 1 s) must age on the processes' own clocks.
    let aged = Instant::now() + Duration::from_millis(1100);
    while Instant::now() < aged {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = deployment.discord.refresh_token_uses();
    deployment.discord.inject(
        FakeRoute::Token,
        Fault::Slow {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );

    // Act: one app refreshes on A, two on B, at the same moment.
    let (wiki, forum, chat) = tokio::join!(
        refresh(&a, APPS[0], &tokens[0]),
        refresh(&b, APPS[1], &tokens[1]),
        refresh(&b, APPS[2], &tokens[2]),
    );

    // Assert
    for (status, body) in [wiki, forum, chat] {
        assert_eq!(status, 200, "every app gets new tokens: {body}");
    }
    assert_eq!(
        deployment.discord.refresh_token_uses() - before,
        1,
        "one Discord token refresh across both processes"
    );
}
