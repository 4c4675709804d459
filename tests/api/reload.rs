//! Config reload without a restart: clients added or removed by a reload take effect at once, a
//! configuration with problems changes nothing and reports all of them (unknown keys included),
//! restart-only settings keep their running values; SIGHUP and `guildgate reload` on a real
//! process; `check-config` lists an unknown key together with other problems.

use crate::browser::Browser;
use crate::cli::run_guildgate;
use crate::helpers::{
    ALICE, OTHER, OTHER_RP, OTHER_SECRET, Rp, TestApp, client_toml, introspect_as, session_cookie,
    spawn_app, tokens_via,
};
use crate::serve_process::ServeProcess;
use guildgate::reload::{ReloadError, Reloaded, reload_with};

const LATE: Rp = Rp {
    id: "late",
    secret: "late-secret-late-secret",
    redirect: "https://late.example.com/cb",
};

/// Reloads `app` from a file holding `toml`, with no `GUILDGATE__*` environment.
fn reload_from(app: &TestApp, toml: &str) -> Result<Reloaded, ReloadError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("reloaded.toml");
    std::fs::write(&file, toml).expect("write config");
    reload_with(&app.state, Some(&file), std::iter::empty())
}

fn problems(outcome: Result<Reloaded, ReloadError>) -> Vec<String> {
    match outcome {
        Err(ReloadError::Invalid(problems)) => problems.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_added_by_reload_can_sign_in() {
    // Arrange
    let app = spawn_app().await;
    let toml = format!("{}{}", app.config_toml(), client_toml(LATE, ""));

    // Act
    let reloaded = reload_from(&app, &toml).expect("the new configuration is valid");
    let tokens = tokens_via(&app, &mut Browser::new(), LATE, &[], ALICE).await;

    // Assert
    assert_eq!(reloaded.clients, 4);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.body["id_token"].is_string());
}

#[tokio::test]
async fn a_client_removed_by_reload_gets_invalid_client() {
    // Arrange: `other` has signed someone in before the reload.
    let app = spawn_app().await;
    let before = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;

    // Act: the new file registers only `late`.
    reload_from(&app, &client_toml(LATE, "")).expect("valid");
    let refresh =
        crate::helpers::refresh_as(&app, OTHER_RP, &before.text("refresh_token"), None).await;
    let introspect = introspect_as(&app, Some(OTHER_RP), "t").await;

    // Assert
    assert_eq!(refresh.status, 401, "{}", refresh.body);
    assert_eq!(refresh.error(), "invalid_client");
    assert_eq!(introspect.error(), "invalid_client");
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_reports_every_problem_with_unknown_keys() {
    // Arrange: a new client, a typo'd key, a bad lifetime and a bad redirect URI.
    let app = spawn_app().await;
    let toml = format!(
        "{}{}\n[tokens]\ncode_ttl = \"forever\"\nacess_token_ttl = \"5m\"\n\
         [[clients]]\nid = \"broken\"\nsecret = \"broken-secret-broken\"\nredirect_uris = [\"not a url\"]\n",
        app.config_toml(),
        client_toml(LATE, "")
    );

    // Act
    let found = problems(reload_from(&app, &toml));
    let late = introspect_as(&app, Some(LATE), "t").await;
    let other = introspect_as(&app, Some(OTHER_RP), "t").await;

    // Assert
    let has = |needle: &str| found.iter().any(|p| p.contains(needle));
    assert!(has("tokens.acess_token_ttl"), "the unknown key: {found:?}");
    assert!(has("tokens.code_ttl"), "the bad lifetime: {found:?}");
    assert!(has("redirect_uris"), "the bad redirect URI: {found:?}");
    assert_eq!(
        late.error(),
        "invalid_client",
        "the new client is not registered"
    );
    assert_eq!(
        other.status, 200,
        "the old clients still work: {}",
        other.body
    );
}

#[tokio::test]
async fn restart_only_settings_keep_their_running_values_and_are_reported() {
    // Arrange
    let app = spawn_app().await;
    let toml = format!(
        "issuer = \"https://elsewhere.example.com\"\n[server]\nlisten = \"0.0.0.0:9999\"\n\
         [session]\nttl = \"1h\"\n{}",
        app.config_toml()
    );

    // Act
    let reloaded = reload_from(&app, &toml).expect("valid");
    let discovery: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();

    // Assert
    for key in ["issuer", "server", "database", "keys.dir", "discord"] {
        assert!(
            reloaded.needs_restart.contains(&key),
            "{key} needs a restart: {:?}",
            reloaded.needs_restart
        );
    }
    assert!(!reloaded.needs_restart.contains(&"session.cookie_name"));
    assert_eq!(discovery["issuer"], app.address, "the running issuer stays");
    assert_eq!(
        app.state.config().lifetimes.session,
        std::time::Duration::from_secs(3600),
        "lifetimes change live"
    );
}

#[tokio::test]
async fn check_config_lists_an_unknown_key_and_another_problem_together() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("g.toml"),
        "[server]\nlisten_address = \"0.0.0.0:80\"\n[tokens]\ncode_ttl = \"1h\"\n",
    )
    .unwrap();

    // Act
    let output = run_guildgate(dir.path(), &["check-config", "-c", "g.toml"], &[]);

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("server.listen_address"), "{stderr}");
    assert!(stderr.contains("unknown key"), "{stderr}");
    assert!(stderr.contains("tokens.code_ttl"), "{stderr}");
}

#[tokio::test]
async fn sighup_through_guildgate_reload_applies_a_good_file_and_keeps_running_on_a_bad_one() {
    // Arrange
    let process = ServeProcess::start(&client_toml(OTHER_RP, "")).await;
    let pid_file = process.pid_file.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let reload = || run_guildgate(dir.path(), &["reload", "--pid-file", &pid_file], &[]);

    // Act 1: a file with two problems.
    process.rewrite_config(&format!(
        "{}[tokens]\nacess_token_ttl = \"5m\"\ncode_ttl = \"forever\"\n",
        client_toml(LATE, "")
    ));
    let sent = reload();
    let refused = process.log_shows("configuration not reloaded").await;
    let late_after_bad = process.introspect_status((LATE.id, LATE.secret)).await;
    let other_after_bad = process.introspect_status((OTHER, OTHER_SECRET)).await;

    // Act 2: the same without the problems.
    process.rewrite_config(&client_toml(LATE, ""));
    reload();
    let applied = process.log_shows("configuration reloaded").await;
    let late_after_good = process.introspect_status((LATE.id, LATE.secret)).await;
    let other_after_good = process.introspect_status((OTHER, OTHER_SECRET)).await;

    // Assert
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let log = process.log();
    assert!(refused, "{log}");
    assert!(
        log.contains("tokens.acess_token_ttl"),
        "every problem is logged: {log}"
    );
    assert!(
        log.contains("tokens.code_ttl"),
        "every problem is logged: {log}"
    );
    assert_eq!(late_after_bad, 401, "nothing changed");
    assert_eq!(other_after_bad, 200, "the old clients still work");
    assert!(applied, "{log}");
    assert_eq!(late_after_good, 200, "the added client authenticates");
    assert_eq!(other_after_good, 401, "the removed client does not");
}

#[tokio::test]
async fn a_client_removed_while_its_person_is_at_discord_gets_an_error_page_and_no_session() {
    // Arrange: Alice leaves for Discord to sign in to `other`.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let to_discord = browser
        .get(&app.authorize_url(OTHER_RP.id, OTHER_RP.redirect, &[]))
        .await;
    let discord_url = to_discord.location.expect("to Discord");
    let callback = app
        .discord_approves(&mut browser, &discord_url, ALICE)
        .await;

    // Act: a reload removes `other` before she comes back.
    reload_from(&app, &client_toml(LATE, "")).expect("valid");
    let back = browser.get(&callback).await;

    // Assert: a page, not a redirect to an app no longer registered, and no session is
    // opened for a sign-in that was not written.
    assert_eq!(back.status, 500, "{}", back.body);
    assert!(back.location.is_none(), "{:?}", back.location);
    assert_eq!(session_cookie(&app, &browser), None);
}
