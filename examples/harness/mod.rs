//! What the load benchmark and the soak share: guildgate as a child process with a config file
//! in a temp folder and the fake Discord in this process, and a whole sign-in over real sockets.

#![allow(dead_code)] // each example uses its own subset

pub mod nginx;
pub mod seed;
pub mod wrk;

use guildgate::discord::fake::{FakeData, FakeDiscord, FakeDiscordHandle, FakeRoute};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registered client the harness drives.
pub const CLIENT: &str = "bench";
/// Its secret.
pub const SECRET: &str = "bench-secret-bench-secret";
/// Its redirect URI.
pub const REDIRECT: &str = "https://bench.example.com/cb";
/// The Discord user who signs in.
pub const USER: &str = "318172463195504640";

/// The guildgate process under test; killed when dropped.
pub struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `VmRSS` (now) or `VmHWM` (peak) of the process, in MiB.
    pub fn memory(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A running guildgate, its fake Discord and its database.
pub struct Setup {
    /// The process.
    pub server: Server,
    /// Its issuer, where it listens.
    pub issuer: String,
    /// The fake Discord it signs people in with (the user is always [`USER`]).
    pub discord: FakeDiscordHandle,
    /// `database.url`.
    pub database: String,
    /// Holds the config, keys and SQLite file.
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// Whether the database is SQLite.
    pub fn sqlite(&self) -> bool {
        self.database.starts_with("sqlite")
    }
}

/// Starts `binary serve` on a free port: SQLite in a temp folder, or the Postgres database at
/// `postgres` (emptied first). `extra_toml` goes before the client table (its own sections);
/// `client_extra` are more `key = value` lines of the client.
pub async fn start(
    binary: &str,
    postgres: Option<String>,
    extra_toml: &str,
    client_extra: &str,
) -> anyhow::Result<Setup> {
    if !std::path::Path::new(binary).exists() {
        anyhow::bail!(
            "{binary} does not exist: run `cargo build --release` first or pass --binary"
        );
    }
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut data = FakeData::demo()?;
    data.redirect_uris = vec![format!("{issuer}/callback/discord")];
    let discord = FakeDiscord::start(data.clone())?;
    // The harness signs one Discord user in over and over: lift the fake's per-token limits.
    for route in [FakeRoute::Me, FakeRoute::Token] {
        discord.set_rate_limit(route, 1_000_000, Duration::from_secs(1));
    }
    discord.sign_in_as(Some(USER));
    let database = match postgres {
        Some(url) => {
            empty_postgres(&url).await?;
            url
        }
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{issuer}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [log]\nlevel = \"error\"\n[database]\nurl = \"{database}\"\n\
             [keys]\ndir = \"{keys}\"\n\
             [discord]\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n\
             authorize_url = \"{authorize}\"\napi_base_url = \"{api}\"\n\
             {extra_toml}\n\
             [[clients]]\nid = \"{CLIENT}\"\nsecret_hash = \"{hash}\"\n\
             redirect_uris = [\"{REDIRECT}\"]\nrefresh_tokens = true\n{client_extra}\n",
            keys = dir.path().join("keys").display(),
            id = data.client_id,
            secret = data.client_secret,
            authorize = discord.authorize_url(),
            api = discord.api_base_url(),
            hash = guildgate::clients::hash_secret(SECRET)?,
        ),
    )?;
    let server = Server {
        child: Command::new(binary)
            .args(["--config", &config.display().to_string(), "serve"])
            .stdout(Stdio::null())
            .spawn()?,
    };
    wait_ready(&reqwest::Client::new(), &issuer).await?;
    Ok(Setup {
        server,
        issuer,
        discord,
        database,
        dir,
    })
}

/// Drops and re-creates the public schema, so each run starts empty; creates the database
/// first when it does not exist (through the server's `postgres` database).
async fn empty_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
    if let Some(name) = options.get_database().map(str::to_owned) {
        let mut server =
            sqlx::PgConnection::connect_with(&options.clone().database("postgres")).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut server)
                .await?;
        if exists.is_none() {
            // The name is the operator's own setting, quoted as an identifier.
            let quoted = name.replace('"', "\"\"");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{quoted}\"")))
                .execute(&mut server)
                .await?;
        }
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&mut conn)
        .await?;
    Ok(())
}

async fn wait_ready(http: &reqwest::Client, issuer: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{issuer}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("guildgate did not become ready within 60 s")
}

/// Whether the request got a 2xx answer.
pub fn success(r: Result<reqwest::Response, reqwest::Error>) -> bool {
    r.is_ok_and(|r| r.status().is_success())
}

/// What a finished sign-in leaves: the tokens and the browser's session cookie.
pub struct SignedIn {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The ID token.
    pub id_token: String,
    /// `name=value` of the session cookie the callback set.
    pub session_cookie: String,
}

/// Authorize → fake Discord (signed in) → callback → token.
pub async fn sign_in(http: &reqwest::Client, issuer: &str) -> anyhow::Result<SignedIn> {
    let url = format!(
        "{issuer}/authorize?client_id={CLIENT}&redirect_uri={}&response_type=code&scope=openid%20profile&state=s",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let to_discord = http.get(url).send().await?;
    let cookie = cookies(&to_discord);
    let discord_url = location(&to_discord)?;
    let back = http.get(discord_url).send().await?;
    let callback = location(&back)?;
    let done = http.get(callback).header("cookie", cookie).send().await?;
    let session_cookie = cookies(&done);
    let app = location(&done)?;
    let code = url::Url::parse(&app)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no code in {app}"))?;
    let answer = http
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?;
    anyhow::ensure!(answer.status().is_success(), "token: {}", answer.status());
    let body: serde_json::Value = answer.json().await?;
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Ok(SignedIn {
        access: text("access_token"),
        refresh: text("refresh_token"),
        id_token: text("id_token"),
        session_cookie,
    })
}

/// The `name=value` pairs a response sets, as one `Cookie` header.
fn cookies(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A redirect's `Location`.
pub fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a redirect, got {}", r.status()))
}

/// Throughput and latency of one path.
pub struct Outcome {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}
