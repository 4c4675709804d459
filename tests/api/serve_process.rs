//! One real `guildgate serve` process for the tests that need its signals (graceful shutdown,
//! SIGHUP reload): a config file, a fresh database, a keys folder, the test's fake Discord, a
//! pid file and its log (JSON lines) in a file the test reads.

use crate::browser::{Browser, query_of};
use crate::helpers::backend;
use crate::processes::free_port;
use crate::test_db::{TestDb, fresh_database};
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `guildgate serve`, killed when dropped (unless it already exited).
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub address: String,
    /// The port it listens on.
    pub port: u16,
    /// Its config file (rewrite it, then signal, to reload).
    pub config: PathBuf,
    /// Its pid file (`serve --pid-file`).
    pub pid_file: PathBuf,
    log: PathBuf,
    /// The fake Discord it signs people in with.
    pub discord: FakeDiscordHandle,
    head: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// Starts `guildgate serve` with the fake Discord's settings plus `extra_toml` (clients, …),
    /// and waits until it is ready.
    pub async fn start(extra_toml: &str) -> Self {
        let db = fresh_database(backend()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let address = format!("http://127.0.0.1:{port}");
        let mut data = FakeData::demo().expect("demo data");
        data.redirect_uris = vec![format!("{address}/callback/discord")];
        let discord = FakeDiscord::start(data.clone()).expect("fake Discord");
        let head = format!(
            "issuer = \"{address}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [log]\nlevel = \"info\"\nformat = \"json\"\n\
             [database]\nurl = \"{db}\"\nmax_connections = 5\n[keys]\ndir = \"{keys}\"\n\
             [discord]\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n\
             authorize_url = \"{authorize}\"\napi_base_url = \"{api}\"\n",
            db = db.url,
            keys = dir.path().join("keys").display(),
            id = data.client_id,
            secret = data.client_secret,
            authorize = discord.authorize_url(),
            api = discord.api_base_url(),
        );
        let config = dir.path().join("guildgate.toml");
        std::fs::write(&config, format!("{head}{extra_toml}")).expect("config");
        let pid_file = dir.path().join("guildgate.pid");
        let log = dir.path().join("guildgate.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_guildgate"));
        for (key, _) in std::env::vars() {
            if key.starts_with("GUILDGATE_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .arg("--pid-file")
            .arg(&pid_file)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("guildgate starts");
        let process = Self {
            child,
            address,
            port,
            config,
            pid_file,
            log,
            discord,
            head,
            _db: db,
            _dir: dir,
        };
        process.wait_until_ready().await;
        process
    }

    async fn wait_until_ready(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = http
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready && self.pid_file.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("guildgate did not become ready: {}", self.log());
    }

    /// Rewrites the config file: the fake Discord's settings plus `extra_toml`.
    pub fn rewrite_config(&self, extra_toml: &str) {
        std::fs::write(&self.config, format!("{}{extra_toml}", self.head)).expect("config");
    }

    /// Sends `signal` (e.g. `"TERM"`) to the process with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 20 s) until its log contains `needle`; whether it did.
    pub async fn log_shows(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits (up to 30 s) for the process to exit; its status.
    pub async fn exited(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Signs `user` in to `client_id` (redirect URI `redirect`) through the fake Discord; the
    /// authorization code.
    pub async fn code_for(&self, client_id: &str, redirect: &str, user: &str) -> String {
        let mut browser = Browser::new();
        let url = format!(
            "{}/authorize?client_id={client_id}&redirect_uri={redirect}&response_type=code&scope=openid&state=s",
            self.address
        );
        let to_discord = browser.get(&url).await;
        let discord_url = to_discord
            .location
            .unwrap_or_else(|| panic!("to Discord: {} {}", to_discord.status, to_discord.body));
        self.discord.sign_in_as(Some(user));
        let back = browser.get(&discord_url).await;
        let done = browser
            .get(&back.location.expect("back from Discord"))
            .await;
        let location = done
            .location
            .unwrap_or_else(|| panic!("to the app: {} {}", done.status, done.body));
        query_of(&location)["code"].clone()
    }

    /// `POST /introspect` authenticated as `client` (Basic); the status.
    pub async fn introspect_status(&self, client: (&str, &str)) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/introspect", self.address))
            .basic_auth(client.0, Some(client.1))
            .form(&[("token", "t")])
            .send()
            .await
            .expect("introspection request")
            .status()
            .as_u16()
    }
}
