//! Upgrades under traffic: a database at every earlier schema version (made by the migrations of
//! that time, with a person, their session, a grant with its refresh token and their kept Discord
//! tokens written in that version's SQL) is migrated by the current guildgate at start-up, and
//! that person's refresh (re-checking their membership with the kept tokens), single sign-on and
//! logout still work, on SQLite and on Postgres. `migrate --dry-run` lists what would run.

use crate::browser::Browser;
use crate::cli::{run_guildgate, stdout_of};
use crate::helpers::{BOB, SESSION_COOKIE};
use crate::processes::{Deployment, Process, code_of, redeem, refresh};
use crate::test_db::{Backend, TestDb, backends, fresh_database};
use guildgate::discord::DiscordTokens;
use guildgate::domain::{GrantId, OpaqueToken, SessionId};
use guildgate::sealed::Keyring;
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

const COMMUNITY: &str = "812345678901234567";
const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";
/// The encryption key every test deployment is configured with (`processes.rs`).
const DEPLOYMENT_KEY: [u8; 32] = [0xef; 32];

fn folder(backend: Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
}

/// The migration numbers in the repository, oldest first.
fn versions(backend: Backend) -> Vec<i64> {
    let mut all: Vec<i64> = std::fs::read_dir(folder(backend))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .collect();
    all.sort_unstable();
    all
}

/// Every schema version before the current one.
fn earlier_versions(backend: Backend) -> Vec<i64> {
    let mut all = versions(backend);
    all.pop();
    all
}

/// A database at schema `version`: the migrations up to it, as they are in the repository
/// (the files of that time; a shipped migration is never edited), applied by sqlx.
async fn database_at(backend: Backend, version: i64) -> TestDb {
    let db = fresh_database(backend).await;
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(folder(backend)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number <= version {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    match backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db.url.trim_start_matches("sqlite://"))
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
    db
}

/// Real tokens of Bob's from the deployment's (fake) Discord, as guildgate would have kept them:
/// its authorization code flow with PKCE, done here.
async fn bobs_discord_tokens(deployment: &Deployment) -> DiscordTokens {
    let fake = &deployment.discord;
    let (challenge, verifier) = crate::helpers::pkce();
    let redirect = format!("{}/callback/discord", deployment.issuer);
    let mut authorize = fake.authorize_url();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &fake.client_id())
        .append_pair("scope", "identify guilds guilds.members.read")
        .append_pair("state", "s")
        .append_pair("redirect_uri", &redirect)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    fake.sign_in_as(Some(BOB));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = http.get(authorize).send().await.unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    let code = crate::browser::query_of(&location)["code"].clone();
    let tokens: serde_json::Value = http
        .post(format!("{}/oauth2/token", fake.api_base_url()))
        .basic_auth(fake.client_id(), Some(fake.client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    DiscordTokens {
        access_token: tokens["access_token"].as_str().unwrap().to_owned().into(),
        refresh_token: tokens["refresh_token"]
            .as_str()
            .map(|t| t.to_owned().into()),
        expires_in: Duration::from_secs(tokens["expires_in"].as_u64().unwrap()),
        scopes: vec![],
    }
}

/// What the fixture holds for Bob: his session cookie's secret and his refresh token.
struct Fixture {
    session_secret: String,
    refresh_token: String,
}

/// Bob as a guildgate at schema `version` kept him, written with that version's SQL: his
/// profile with a membership snapshot an hour old and his sealed Discord tokens (the access
/// token past its expiry), a live session
/// (with its browser from version 5 on), the wiki taking part in it, and a grant under the
/// session with its refresh token.
async fn write_fixture(deployment: &Deployment, backend: Backend, version: i64) -> Fixture {
    let now = OffsetDateTime::now_utc();
    let (t, hour_ago) = (
        now.unix_timestamp(),
        (now - time::Duration::hours(1)).unix_timestamp(),
    );
    let day = 24 * 3600;
    let keyring = Keyring::new(&[DEPLOYMENT_KEY]).unwrap().unwrap();
    let (sealed, _) = guildgate::discord::kept_tokens::seal_tokens(
        &keyring,
        BOB,
        &bobs_discord_tokens(deployment).await,
        now,
    )
    .unwrap();
    let session_secret = OpaqueToken::generate();
    let refresh_token = OpaqueToken::generate();
    let (session, grant) = (SessionId::generate(), GrantId::generate());
    let session_sql = if version >= 5 {
        "INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, \
         last_seen_at, user_agent, ip) VALUES ($1, $2, $3, $4, $4, $5, $4, 'Mozilla/5.0', '127.0.0.1')"
    } else {
        "INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, expires_at, \
         last_seen_at) VALUES ($1, $2, $3, $4, $4, $5, $4)"
    };
    let statements: Vec<(&'static str, Vec<Value>)> = vec![
        (
            "INSERT INTO users (id, username, global_name, avatar, email, email_verified, locale, \
             created_at, updated_at, membership, membership_fetched_at, discord_tokens, \
             discord_token_expires_at) VALUES ($1, 'bob.staff', 'Bob (staff)', NULL, \
             'bob@example.com', TRUE, 'en-GB', $2, $2, '{\"guilds\":{}}', $2, $3, $4)",
            vec![
                Value::Text(BOB.into()),
                Value::Int(hour_ago),
                Value::Blob(sealed),
                // Expired as guildgate counts it: the re-check renews them with the kept
                // refresh token.
                Value::Int(hour_ago),
            ],
        ),
        (
            session_sql,
            vec![
                Value::Text(session.as_str().into()),
                Value::Text(session_secret.hash().as_str().into()),
                Value::Text(BOB.into()),
                Value::Int(hour_ago),
                Value::Int(t + day),
            ],
        ),
        (
            "INSERT INTO session_clients (session_id, client_id, first_seen_at) VALUES ($1, 'wiki', $2)",
            vec![Value::Text(session.as_str().into()), Value::Int(hour_ago)],
        ),
        (
            "INSERT INTO grants (id, client_id, user_id, session_id, scopes, auth_time, \
             created_at, expires_at) VALUES ($1, 'wiki', $2, $3, 'openid', $4, $4, $5)",
            vec![
                Value::Text(grant.as_str().into()),
                Value::Text(BOB.into()),
                Value::Text(session.as_str().into()),
                Value::Int(hour_ago),
                Value::Int(t + 30 * day),
            ],
        ),
        (
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
            vec![
                Value::Text(refresh_token.hash().as_str().into()),
                Value::Text(grant.as_str().into()),
                Value::Int(hour_ago),
                Value::Int(t + 7 * day),
            ],
        ),
    ];
    execute(deployment.database_url(), backend, statements).await;
    Fixture {
        session_secret: session_secret.expose().to_owned(),
        refresh_token: refresh_token.expose().to_owned(),
    }
}

/// A value bound into the fixture's SQL.
enum Value {
    Text(String),
    Int(i64),
    Blob(Vec<u8>),
}

async fn execute(url: &str, backend: Backend, statements: Vec<(&'static str, Vec<Value>)>) {
    macro_rules! run_all {
        ($conn:expr) => {
            for (sql, values) in statements {
                let mut query = sqlx::query(sql);
                for value in values {
                    query = match value {
                        Value::Text(v) => query.bind(v),
                        Value::Int(v) => query.bind(v),
                        Value::Blob(v) => query.bind(v),
                    };
                }
                query
                    .execute(&mut $conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        };
    }
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            run_all!(conn);
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            run_all!(conn);
        }
    }
}

fn clients() -> String {
    format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n\
         allowed_guilds = [\"{COMMUNITY}\"]\nrefresh_tokens = true\n",
        WIKI.0, WIKI.1
    )
}

/// `guildgate migrate --dry-run` on the deployment's database: what it prints.
fn dry_run(deployment: &Deployment) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let config = deployment.config_file().display().to_string();
    let out = run_guildgate(
        cwd.path(),
        &["--config", &config, "migrate", "--dry-run"],
        &[],
    );
    assert!(out.status.success(), "{}", crate::cli::stderr_of(&out));
    stdout_of(&out)
}

/// Refresh, single sign-on and logout for Bob after the upgrade from `version`.
async fn upgrade_from(backend: Backend, version: i64) {
    // Arrange: the database at `version`, Bob in it.
    let deployment = Deployment::on(database_at(backend, version).await, &clients());
    let fixture = write_fixture(&deployment, backend, version).await;
    let planned = dry_run(&deployment);
    let renewals = deployment.discord.refresh_token_uses();

    // Act: the current guildgate starts on it (and migrates it).
    let process: Process = deployment.start_at_issuer().await;
    let after = dry_run(&deployment);
    let (refreshed_status, refreshed) = refresh(&process, WIKI, &fixture.refresh_token).await;
    let mut browser = Browser::new();
    browser.set_cookie(&deployment.issuer, SESSION_COOKIE, &fixture.session_secret);
    let sso = browser
        .get_through(
            &deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]),
            &process.address,
        )
        .await;
    let to_app = sso.location.clone().unwrap_or_default();
    let (redeemed_status, tokens) = redeem(&process, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    let logout = format!(
        "{}/logout?id_token_hint={}",
        deployment.issuer,
        tokens["id_token"].as_str().unwrap_or_default()
    );
    let signed_out = browser.get_through(&logout, &process.address).await;
    let (after_logout, _) = refresh(
        &process,
        WIKI,
        refreshed["refresh_token"].as_str().unwrap_or_default(),
    )
    .await;

    // Assert
    let from = format!("from schema version {version} on {backend:?}");
    let pending: Vec<i64> = versions(backend)
        .into_iter()
        .filter(|v| *v > version)
        .collect();
    for v in &pending {
        assert!(
            planned.contains(&format!("  {v:04} ")),
            "{from}: dry run lists {v}: {planned}"
        );
    }
    assert!(
        planned.contains(&format!("would apply {} migration(s)", pending.len())),
        "{planned}"
    );
    assert!(after.contains("is up to date"), "{from}: {after}");
    assert_eq!(
        refreshed_status,
        200,
        "{from}: refresh: {refreshed}\n{}",
        process.log()
    );
    assert!(
        deployment.discord.refresh_token_uses() > renewals,
        "{from}: the membership was re-checked with the kept Discord tokens"
    );
    assert!(
        to_app.starts_with(WIKI_REDIRECT) && to_app.contains("code="),
        "{from}: single sign-on without Discord: {} {:?} {}",
        sso.status,
        sso.location,
        sso.body
    );
    assert_eq!(redeemed_status, 200, "{from}: {tokens}");
    assert!(tokens["id_token"].is_string(), "{from}: an ID token");
    assert_eq!(signed_out.status, 200, "{from}: {}", signed_out.body);
    assert!(
        signed_out.body.contains("signed out"),
        "{from}: {}",
        signed_out.body
    );
    assert_eq!(
        after_logout, 400,
        "{from}: the grant ended with the session"
    );
}

#[tokio::test]
async fn people_of_every_earlier_schema_version_refresh_sign_in_and_log_out_after_the_upgrade() {
    for backend in backends() {
        for version in earlier_versions(backend) {
            upgrade_from(backend, version).await;
        }
    }
}
