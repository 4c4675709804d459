//! Real `guildgate serve` processes of one deployment (one database, one keys folder, one config
//! file, the test's fake Discord), a back-channel logout receiver the test controls, and the
//! requests the multi-process and fault tests repeat.

use crate::browser::{Browser, query_of};
use crate::test_db::{Backend, POSTGRES_URL_VAR, TestDb, fresh_database};
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `guildgate serve` process, killed when dropped; its log is printed when a test fails.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    log: PathBuf,
}

impl Process {
    /// Kills the process at once (SIGKILL: no shutdown work runs) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id (for `guildgate reload --pid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 20 s) until a line of its log contains every one of `needles`; whether
    /// one did.
    pub async fn logged(&self, needles: &[&str]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .log()
                .lines()
                .any(|line| needles.iter().all(|n| line.contains(n)));
            if found || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- log of guildgate at {} ---\n{}",
                self.address,
                self.log()
            );
        }
    }
}

/// The deployment: its config file, database, keys folder and fake Discord.
pub struct Deployment {
    /// The issuer (the address of the process started with [`Deployment::start_at_issuer`]).
    pub issuer: String,
    issuer_port: u16,
    /// The fake Discord every process signs people in with.
    pub discord: FakeDiscordHandle,
    /// The folder holding the config file, the keys folder and the process logs.
    pub dir: tempfile::TempDir,
    config: PathBuf,
    env: Vec<(String, String)>,
    db: TestDb,
}

/// A port that was free a moment ago, for a child process to bind later.
///
/// Taken below Linux's ephemeral range (32768 and up by default), from which the kernel hands
/// out both `bind(0)` ports and the local ports of outgoing connections: a port from that range
/// could be taken by any test's connection before the process binds it ("Address already in
/// use", seen in CI). Here only another pick from this same range could, and picks start at a
/// random place in it.
pub fn free_port() -> u16 {
    use rand::Rng;
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    let start = rand::thread_rng().gen_range(0..COUNT);
    (0..COUNT)
        .map(|i| FIRST + (start + i) % COUNT)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// Whether the tests of several processes can run: they need Postgres. Prints why not.
pub fn postgres_or_skip(what: &str) -> bool {
    if std::env::var_os(POSTGRES_URL_VAR).is_some() {
        return true;
    }
    println!("skipped: {what} needs Postgres ({POSTGRES_URL_VAR} is not set)");
    false
}

impl Deployment {
    /// A deployment on a fresh database of `backend`, with `clients_toml` (its `[[clients]]`
    /// tables) after the base config: log level warn, the fake Discord's URLs and credentials,
    /// and an encryption key.
    pub async fn new(backend: Backend, clients_toml: &str) -> Self {
        let db = fresh_database(backend).await;
        Self::on(db, clients_toml)
    }

    /// As [`Deployment::new`], with config sections that need the fake Discord (its bot token,
    /// its Gateway URL): `extra(&fake)` is appended.
    pub async fn new_with(
        backend: Backend,
        extra: impl FnOnce(&FakeDiscordHandle) -> String,
    ) -> Self {
        let db = fresh_database(backend).await;
        Self::on_with(db, extra)
    }

    /// As [`Deployment::new`], on a database the test prepared.
    pub fn on(db: TestDb, clients_toml: &str) -> Self {
        Self::on_with(db, |_| clients_toml.to_owned())
    }

    /// As [`Deployment::new_with`], on a database the test prepared.
    fn on_with(db: TestDb, extra: impl FnOnce(&FakeDiscordHandle) -> String) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer_port = free_port();
        let issuer = format!("http://127.0.0.1:{issuer_port}");
        let mut data = FakeData::demo().expect("demo data");
        data.redirect_uris = vec![format!("{issuer}/callback/discord")];
        let discord = FakeDiscord::start(data.clone()).expect("fake Discord");
        let clients_toml = extra(&discord);
        let config = format!(
            "issuer = \"{issuer}\"\n[log]\nlevel = \"warn\"\n\
             [database]\nurl = \"{db}\"\nmax_connections = 4\n[keys]\ndir = \"{keys}\"\n\
             [discord]\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n\
             authorize_url = \"{authorize}\"\napi_base_url = \"{api}\"\n\
             [secrets]\nencryption_key = \"{key}\"\n{clients_toml}",
            db = db.url,
            keys = dir.path().join("keys").display(),
            id = data.client_id,
            secret = data.client_secret,
            authorize = discord.authorize_url(),
            api = discord.api_base_url(),
            key = "ef".repeat(32),
        );
        let file = dir.path().join("guildgate.toml");
        std::fs::write(&file, config).expect("config");
        Self {
            issuer,
            issuer_port,
            discord,
            dir,
            config: file,
            env: Vec::new(),
            db,
        }
    }

    /// The config file every process reads (for admin commands run beside them).
    pub fn config_file(&self) -> &std::path::Path {
        &self.config
    }

    /// The keys folder every process shares.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// The database every process uses (for a test that reads or stages rows directly).
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// Sets `GUILDGATE__…` for every process started afterwards (e.g. `DISCORD__TIMEOUT`).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env
            .push((format!("GUILDGATE__{key}"), value.to_owned()));
        self
    }

    /// Starts the process that listens at the issuer's address, and waits until it is ready.
    pub async fn start_at_issuer(&self) -> Process {
        self.start(self.issuer_port).await
    }

    /// Starts a process listening on `port`, and waits until it is ready.
    pub async fn start(&self, port: u16) -> Process {
        let process = self.spawn(port, &[]);
        wait_ready(&process).await;
        process
    }

    /// Starts a process on `port` with extra environment variables; does not wait.
    pub fn spawn(&self, port: u16, env: &[(&str, &str)]) -> Process {
        let log = self.dir.path().join(format!("guildgate-{port}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_guildgate"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("GUILDGATE_CONFIG")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .env("GUILDGATE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("guildgate starts");
        Process {
            child,
            address: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Runs `guildgate keys rotate` on the shared folder, as an admin would.
    pub fn keys_rotate(&self) {
        let out = self.keys(&["rotate"]);
        assert!(
            out.status.success(),
            "keys rotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `guildgate keys ARGS` with the deployment's config, as an admin would.
    pub fn keys(&self, args: &[&str]) -> std::process::Output {
        self.admin(&[&["keys"], args].concat())
    }

    /// Runs `guildgate ARGS` with the deployment's config, as an admin would.
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_guildgate"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("GUILDGATE_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("guildgate runs")
    }

    /// `{issuer}/authorize?…` for `client_id` (scope `openid`, state `s`) with `extra`.
    pub fn authorize_url(&self, client_id: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("state", "s");
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.issuer, query.finish())
    }
}

/// Waits (at most 30 s) until the process answers `/readyz` with 200.
pub async fn wait_ready(process: &Process) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = http
            .get(format!("{}/readyz", process.address))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "guildgate at {} did not become ready:\n{}",
        process.address,
        process.log()
    );
}

/// The browser follows `/authorize` (routed to `start`) to the fake Discord, signed in as `user`,
/// and returns Discord's redirect back to the issuer's callback (not yet followed).
pub async fn to_callback(
    deployment: &Deployment,
    browser: &mut Browser,
    start: &Process,
    authorize_url: &str,
    user: &str,
) -> String {
    let to_discord = browser.get_through(authorize_url, &start.address).await;
    let discord_url = to_discord.location.unwrap_or_else(|| {
        panic!(
            "authorize redirects to Discord: {} {}",
            to_discord.status, to_discord.body
        )
    });
    deployment.discord.sign_in_as(Some(user));
    let back = browser.get(&discord_url).await;
    back.location.expect("Discord redirects back")
}

/// The code in a redirect to the app.
pub fn code_of(location: &str) -> String {
    query_of(location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

/// A POST of `form` to `process`'s `path` with Basic credentials: status and JSON body.
pub async fn post_form(
    process: &Process,
    path: &str,
    basic: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", process.address))
        .basic_auth(basic.0, Some(basic.1))
        .form(form)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request reaches guildgate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// The authorization-code grant at `process`.
pub async fn redeem(
    process: &Process,
    basic: (&str, &str),
    code: &str,
    redirect: &str,
) -> (u16, serde_json::Value) {
    post_form(
        process,
        "/token",
        basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ],
    )
    .await
}

/// The refresh-token grant at `process`.
pub async fn refresh(
    process: &Process,
    basic: (&str, &str),
    token: &str,
) -> (u16, serde_json::Value) {
    post_form(
        process,
        "/token",
        basic,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// `GET /userinfo` at `process` with a bearer token: status and JSON body.
pub async fn userinfo(process: &Process, access_token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/userinfo", process.address))
        .bearer_auth(access_token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request reaches guildgate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// How soon a change made through one process reaches every other (the README's bound).
pub const BOUND: Duration = Duration::from_secs(1);

/// How long after `since` the token stopped working at `process` (polled every 20 ms, for at
/// most three times the bound).
pub async fn refused_after(process: &Process, token: &str, since: Instant) -> Duration {
    loop {
        let (status, _) = userinfo(process, token).await;
        if status == 401 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < BOUND * 3,
            "{} still accepts the token",
            process.address
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series of `process`'s `/metrics` (its name with labels, e.g.
/// `guildgate_backchannel_logout_queue`), or `None` when the scrape does not have it.
pub async fn metric(process: &Process, series: &str) -> Option<f64> {
    let scrape = reqwest::get(format!("{}/metrics", process.address))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// How the [`Receiver`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Answer {
    /// 200.
    Ok = 0,
    /// 500.
    Fail = 1,
    /// Never answers (the request is held open).
    Hang = 2,
}

/// A back-channel logout receiver on 127.0.0.1 whose answers the test switches.
pub struct Receiver {
    /// Where it listens (`…/bc`).
    pub url: String,
    answer: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<(String, Answer)>>>,
}

impl Receiver {
    /// Starts a receiver that answers `answer`.
    pub fn start(answer: Answer) -> Self {
        let mode = Arc::new(AtomicU8::new(answer as u8));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let url = format!(
            "http://127.0.0.1:{}/bc",
            listener.local_addr().expect("local addr").port()
        );
        let (m, s) = (mode.clone(), seen.clone());
        let server = actix_web::HttpServer::new(move || {
            let (mode, seen) = (m.clone(), s.clone());
            actix_web::App::new().route(
                "/bc",
                actix_web::web::post().to(move |body: actix_web::web::Bytes| {
                    let (mode, seen) = (mode.clone(), seen.clone());
                    async move {
                        let token = url::form_urlencoded::parse(&body)
                            .find(|(k, _)| k == "logout_token")
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        let answer = match mode.load(Ordering::SeqCst) {
                            0 => Answer::Ok,
                            1 => Answer::Fail,
                            _ => Answer::Hang,
                        };
                        seen.lock().expect("receiver lock").push((token, answer));
                        match answer {
                            Answer::Ok => actix_web::HttpResponse::Ok().finish(),
                            Answer::Fail => actix_web::HttpResponse::InternalServerError().finish(),
                            Answer::Hang => {
                                std::future::pending::<()>().await;
                                actix_web::HttpResponse::Ok().finish()
                            }
                        }
                    }
                }),
            )
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("receiver listens")
        .run();
        tokio::spawn(server);
        Self {
            url,
            answer: mode,
            seen,
        }
    }

    /// From now on, answer `answer`.
    pub fn answer(&self, answer: Answer) {
        self.answer.store(answer as u8, Ordering::SeqCst);
    }

    /// Every logout token received so far, with how it was answered.
    pub fn seen(&self) -> Vec<(String, Answer)> {
        self.seen.lock().expect("receiver lock").clone()
    }

    /// How many logout tokens were answered 200.
    pub fn delivered(&self) -> usize {
        self.seen().iter().filter(|(_, a)| *a == Answer::Ok).count()
    }
}
