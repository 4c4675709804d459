//! Rotating Discord's client secret and the bot token without a restart: a reload (SIGHUP) tries
//! the new one with Discord and uses it only once Discord accepts it; a refused one is reported
//! and the old one stays in use, as does one Discord cannot be asked about now.

use crate::browser::Browser;
use crate::cli::{run_guildgate, stderr_of};
use crate::helpers::{
    ALICE, BOB, OTHER_RP, TestApp, authorize_page, backend, client_toml, spawn_app, tokens_via,
};
use crate::processes::{Deployment, Process, code_of, redeem, to_callback};
use guildgate::discord::fake::{FakeRoute, Fault};
use guildgate::reload::{SecretChange, apply_discord_secrets, reload_with};
use std::time::{Duration, Instant};

const NEW_SECRET: &str = "the-new-client-secret-from-the-portal";
const NEW_BOT_TOKEN: &str = "MTA5.the-new-bot-token.from-the-portal";
const COMMUNITY: &str = "812345678901234567";
/// Shaped like a bot token, but not the application's.
const MISTYPED: &str = "MTA5.a-mistyped.bot-token";

/// Reloads `app` from its own configuration with `discord.client_secret = secret`; what became
/// of the client secret.
async fn reload_with_secret(app: &TestApp, secret: &str) -> SecretChange {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guildgate.toml");
    let toml = format!(
        "[discord]\nclient_id = \"{}\"\nclient_secret = \"{secret}\"\n{}",
        app.discord.client_id(),
        app.config_toml()
    );
    std::fs::write(&file, toml).unwrap();
    let reloaded = reload_with(&app.state, Some(&file), std::iter::empty()).expect("valid");
    if reloaded.discord.client_secret.is_none() {
        return SecretChange::Unchanged;
    }
    apply_discord_secrets(&app.state, reloaded.discord).await.0
}

/// Whether Alice gets through a sign-in (Discord's token endpoint included).
async fn signs_in(app: &TestApp) -> bool {
    let url = app.authorize_url(OTHER_RP.id, OTHER_RP.redirect, &[]);
    let page = authorize_page(app, &mut Browser::new(), &url, ALICE).await;
    page.location.is_some_and(|l| l.contains("code="))
}

#[tokio::test]
async fn a_new_client_secret_is_used_once_discord_accepts_it_and_a_refused_one_changes_nothing() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert: a mistyped new secret is refused; the old one goes on working.
    let mistyped = reload_with_secret(&app, "not-the-secret-at-all").await;
    assert!(
        matches!(&mistyped, SecretChange::Refused(why) if why.contains("invalid_client")),
        "{mistyped:?}"
    );
    assert!(signs_in(&app).await, "the old secret stays in use");

    // The developer resets the secret in the portal: the old one is dead.
    app.discord.reset_client_secret(NEW_SECRET);
    assert!(!signs_in(&app).await, "Discord refuses the old secret now");

    // Discord down: the new secret cannot be checked and is not used yet.
    app.discord
        .inject(FakeRoute::Token, Fault::ServerError { times: 10 });
    let unchecked = reload_with_secret(&app, NEW_SECRET).await;
    app.discord.clear_faults();
    assert!(
        matches!(unchecked, SecretChange::Unchecked(_)),
        "{unchecked:?}"
    );

    // Discord accepts the new one: in use at once.
    let accepted = reload_with_secret(&app, NEW_SECRET).await;
    assert_eq!(accepted, SecretChange::Accepted);
    let tokens = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    assert_eq!(tokens.status, 200);
    assert_eq!(
        reload_with_secret(&app, NEW_SECRET).await,
        SecretChange::Unchanged,
        "a second reload asks Discord nothing"
    );
}

/// A deployment with a bot (memberships read with it, the Gateway connected) and the wiki, gated
/// on the community server; the log at info.
async fn bot_deployment() -> Deployment {
    let wiki = client_toml(
        crate::helpers::Rp {
            id: "wiki",
            secret: "wiki-secret-wiki-secret",
            redirect: "https://wiki.example.com/cb",
        },
        &format!("allowed_guilds = [\"{COMMUNITY}\"]"),
    );
    Deployment::new_with(backend(), |fake| {
        format!(
            "[discord.bot]\ntoken = \"{}\"\ngateway_url = \"{}\"\n{wiki}",
            fake.bot_token(),
            fake.gateway_url()
        )
    })
    .await
    .with_env("LOG__LEVEL", "info")
}

/// The `live_membership.state` at `/readyz`.
async fn gateway_state(process: &Process) -> String {
    let body: serde_json::Value = reqwest::get(format!("{}/readyz", process.address))
        .await
        .expect("readyz answers")
        .json()
        .await
        .unwrap_or_default();
    body["live_membership"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (at most 20 s) for the Gateway connection to reach `state`; whether it did.
async fn gateway_reaches(process: &Process, state: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if gateway_state(process).await == state {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Puts `token` in the config file as the bot token and sends SIGHUP with `guildgate reload`.
fn reload_with_bot_token(deployment: &Deployment, process: &Process, from: &str, token: &str) {
    let file = deployment.config_file();
    let config = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, config.replace(from, token)).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let pid = process.pid().to_string();
    let sent = run_guildgate(cwd.path(), &["reload", "--pid", &pid], &[]);
    assert!(sent.status.success(), "{}", stderr_of(&sent));
}

/// Bob signs in to the wiki (his membership read with the bot token); whether he got tokens.
async fn bob_signs_in(deployment: &Deployment, process: &Process) -> bool {
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url("wiki", "https://wiki.example.com/cb", &[]);
    let callback = to_callback(deployment, &mut browser, process, &authorize, BOB).await;
    let done = browser.get_through(&callback, &process.address).await;
    let Some(to_app) = done.location.filter(|l| l.contains("code=")) else {
        return false;
    };
    let (status, _) = redeem(
        process,
        ("wiki", "wiki-secret-wiki-secret"),
        &code_of(&to_app),
        "https://wiki.example.com/cb",
    )
    .await;
    status == 200
}

#[tokio::test]
async fn sighup_replaces_a_reset_bot_token_once_discord_accepts_it_and_the_gateway_connects_with_it()
 {
    // Arrange: the Gateway connected with the first token.
    let deployment = bot_deployment().await;
    let process = deployment.start_at_issuer().await;
    let first = deployment.discord.bot_token();
    assert!(
        gateway_reaches(&process, "connected").await,
        "{}",
        process.log()
    );

    // Act 1: a mistyped token is refused; the connection and the bot's reads go on.
    reload_with_bot_token(&deployment, &process, &first, MISTYPED);
    let refused = process
        .logged(&[
            "Discord refused the new discord.bot.token",
            "GUILDGATE__DISCORD__BOT__TOKEN",
        ])
        .await;
    let still = gateway_state(&process).await;
    let signs_in_meanwhile = bob_signs_in(&deployment, &process).await;

    // Act 2: the developer resets the token: Discord drops the connection and refuses the old
    // token. Then the new token goes in the file and SIGHUP.
    deployment.discord.reset_bot_token(NEW_BOT_TOKEN);
    let dropped = gateway_reaches(&process, "refused").await;
    reload_with_bot_token(&deployment, &process, MISTYPED, NEW_BOT_TOKEN);
    let accepted = process
        .logged(&["Discord accepted the new secret", "discord.bot.token"])
        .await;
    let reconnected = gateway_reaches(&process, "connected").await;
    let signs_in_after = bob_signs_in(&deployment, &process).await;

    // Assert
    let log = process.log();
    assert!(refused, "the refusal is reported: {log}");
    assert_eq!(still, "connected", "{log}");
    assert!(signs_in_meanwhile, "the old token stays in use: {log}");
    assert!(dropped, "{log}");
    assert!(accepted, "{log}");
    assert!(
        reconnected,
        "the Gateway connects with the new token: {log}"
    );
    assert!(
        signs_in_after,
        "the bot reads memberships with the new token: {log}"
    );
    assert!(!log.contains(NEW_BOT_TOKEN), "no token in the log");
}
