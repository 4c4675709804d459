//! Backup and restore: people sign in, a backup is taken while refreshes keep coming
//! (`guildgate backup` on SQLite, `pg_dump` on Postgres, as the README says), the backup is
//! restored into a fresh deployment with the same keys folder and secrets, and every refresh
//! token taken before the backup refreshes there.

use crate::browser::Browser;
use crate::helpers::{ALICE, BOB};
use crate::processes::{Deployment, Process, code_of, redeem, refresh, to_callback, userinfo};
use crate::test_db::{Backend, POSTGRES_URL_VAR, TestDb, fresh_database, sqlite_copy_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";
/// Grants taken before the backup, refreshed only after the restore.
const BEFORE: usize = 6;
/// Grants refreshed over and over while the backup runs.
const LOAD: usize = 3;

fn clients() -> String {
    format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\nrefresh_tokens = true\n",
        WIKI.0, WIKI.1
    )
}

/// A sign-in through `process` with a fresh browser; the token response.
async fn sign_in(deployment: &Deployment, process: &Process, user: &str) -> serde_json::Value {
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(deployment, &mut browser, process, &authorize, user).await;
    let done = browser.get_through(&callback, &process.address).await;
    let to_app = done.location.expect("the sign-in completes");
    let (status, tokens) = redeem(process, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// Runs a command to its end without blocking the test's other tasks; panics with its output
/// when it fails.
async fn run(program: &str, args: &[&str]) -> String {
    let (name, arguments) = (
        program.to_owned(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&name)
            .args(&arguments)
            .env_remove("RUST_LOG")
            .output()
    })
    .await
    .expect("the command's thread")
    .unwrap_or_else(|e| panic!("{program} runs (is it installed?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The backup as the README says to take it: `guildgate backup` (SQLite), `pg_dump` (Postgres).
async fn take_backup(deployment: &Deployment, backend: Backend, to: &std::path::Path) {
    let to = to.display().to_string();
    match backend {
        Backend::Sqlite => {
            let config = deployment.config_file().display().to_string();
            let said = run(
                env!("CARGO_BIN_EXE_guildgate"),
                &["--config", &config, "backup", &to],
            )
            .await;
            assert!(said.contains("schema version"), "{said}");
        }
        Backend::Postgres => {
            run(
                "pg_dump",
                &["--format=custom", "--file", &to, deployment.database_url()],
            )
            .await;
        }
    }
}

/// The backup restored into a new, empty database.
async fn restore(backend: Backend, from: &std::path::Path) -> TestDb {
    match backend {
        Backend::Sqlite => sqlite_copy_of(from),
        Backend::Postgres => {
            let db = fresh_database(Backend::Postgres).await;
            let from = from.display().to_string();
            run("pg_restore", &["--no-owner", "--dbname", &db.url, &from]).await;
            db
        }
    }
}

/// Refreshes `tokens` (each grant's current refresh token) in turn until `stop`; counts the
/// refreshes and any that failed.
fn load(
    process: &Process,
    mut tokens: Vec<String>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) -> impl std::future::Future<Output = ()> + 'static {
    let address = process.address.clone();
    async move {
        let http = reqwest::Client::new();
        while !stop.load(Ordering::SeqCst) {
            for token in &mut tokens {
                let answer = http
                    .post(format!("{address}/token"))
                    .basic_auth(WIKI.0, Some(WIKI.1))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
                    .send()
                    .await;
                let body: Option<serde_json::Value> = match answer {
                    Ok(r) if r.status().is_success() => r.json().await.ok(),
                    _ => None,
                };
                match body.and_then(|b| b["refresh_token"].as_str().map(str::to_owned)) {
                    Some(next) => {
                        *token = next;
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
    }
}

async fn backup_under_load_then_restore(backend: Backend) {
    // Arrange: people signed in before the backup, and others refreshing all along.
    let deployment = Deployment::new(backend, &clients()).await;
    let process = deployment.start_at_issuer().await;
    let mut before = Vec::new();
    for i in 0..BEFORE {
        before.push(sign_in(&deployment, &process, [ALICE, BOB][i % 2]).await);
    }
    let mut refreshing = Vec::new();
    for _ in 0..LOAD {
        let tokens = sign_in(&deployment, &process, BOB).await;
        refreshing.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    let (stop, done, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let loader = tokio::spawn(load(
        &process,
        refreshing,
        stop.clone(),
        done.clone(),
        failed.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while done.load(Ordering::SeqCst) < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("guildgate.backup");

    // Act: the backup while the refreshes go on; then a fresh deployment on the restored copy,
    // with the same keys folder (and the same secrets, which every test deployment shares).
    let during_from = done.load(Ordering::SeqCst);
    take_backup(&deployment, backend, &file).await;
    let during = done.load(Ordering::SeqCst) - during_from;
    stop.store(true, Ordering::SeqCst);
    loader.await.unwrap();
    let restored = Deployment::on(restore(backend, &file).await, &clients());
    std::fs::create_dir_all(restored.keys_dir()).unwrap();
    for key in std::fs::read_dir(deployment.keys_dir()).unwrap() {
        let key = key.unwrap().path();
        std::fs::copy(&key, restored.keys_dir().join(key.file_name().unwrap())).unwrap();
    }
    let again = restored.start_at_issuer().await;
    let mut refreshed = Vec::new();
    for tokens in &before {
        refreshed.push(refresh(&again, WIKI, tokens["refresh_token"].as_str().unwrap()).await);
    }

    // Assert
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no refresh failed under the backup"
    );
    assert!(during > 0, "refreshes went on while the backup ran");
    for (i, (status, body)) in refreshed.iter().enumerate() {
        assert_eq!(
            *status, 200,
            "token {i} taken before the backup refreshes: {body}"
        );
        let (status, claims) = userinfo(&again, body["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{claims}");
        assert_eq!(claims["sub"], [ALICE, BOB][i % 2]);
    }
    let jwks = reqwest::get(format!("{}/jwks.json", again.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(before[0]["id_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert!(
        jwks.contains(&kid),
        "ID tokens from before the backup still verify"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_under_load_restores_and_every_earlier_token_refreshes() {
    backup_under_load_then_restore(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_dump_taken_under_load_restores_and_every_earlier_token_refreshes() {
    if std::env::var_os(POSTGRES_URL_VAR).is_none() {
        println!("skipped: the Postgres backup needs {POSTGRES_URL_VAR}");
        return;
    }
    backup_under_load_then_restore(Backend::Postgres).await;
}
