//! Signing-key emergency: `guildgate keys revoke KID` takes a key out of the JWKS, the ID and
//! access tokens it signed are refused, refresh tokens keep working with the new key, and it is
//! audit-logged; SIGHUP applies it in a running process at once. The rough edges of the other
//! key commands: `keys list` before any key exists, and `keys rotate` describing the new key as
//! `keys list` shows it.

use crate::browser::Browser;
use crate::cli::{run_guildgate, stderr_of, stdout_of};
use crate::helpers::{
    ALICE, OTHER_RP, introspect_as, refresh_as, spawn_app, tokens_via, userinfo_status,
};
use crate::serve_process::ServeProcess;
use std::time::{Duration, Instant};

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .expect("a JWT")
        .kid
        .expect("a kid")
}

/// `guildgate keys ARGS` on the folder `dir`.
fn keys_command(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let folder = dir.display().to_string();
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    let cwd = tempfile::tempdir().expect("temp dir");
    run_guildgate(cwd.path(), &all, &[("GUILDGATE__KEYS__DIR", &folder)])
}

/// The state `keys list` prints for `kid`.
fn listed_state(dir: &std::path::Path, kid: &str) -> Option<String> {
    let listed = keys_command(dir, &["list"]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    stdout_of(&listed)
        .lines()
        .find(|line| line.starts_with(kid))
        .and_then(|line| line.split_whitespace().last().map(str::to_owned))
}

#[tokio::test]
async fn a_revoked_key_leaves_the_jwks_its_tokens_are_refused_and_refresh_goes_on_with_a_new_key() {
    // Arrange: tokens signed by the first key.
    let app = spawn_app().await;
    let before = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    let revoked = app.state.keys.active();
    let revoked_access = revoked.access.as_ref().expect("a companion").kid.clone();
    assert_eq!(kid_of(&before.text("id_token")), revoked.kid);

    // Act: the admin revokes it; the running process reloads the folder (driven here one round,
    // as its key job or SIGHUP does).
    let out = keys_command(&app.state.settings.keys.dir, &["revoke", &revoked.kid]);
    guildgate::jobs::maintain_keys_now(&app.state)
        .await
        .expect("the folder reloads");
    let jwks =
        String::from_utf8(app.get("/jwks.json").await.bytes().await.unwrap().to_vec()).unwrap();
    let old_access = before.text("access_token");
    let userinfo_old = userinfo_status(&app, &old_access).await;
    let introspected = introspect_as(&app, Some(OTHER_RP), &old_access).await;
    let refreshed = refresh_as(&app, OTHER_RP, &before.text("refresh_token"), None).await;

    // Assert
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains(&format!("revoked signing key {}", revoked.kid)),
        "{}",
        stdout_of(&out)
    );
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("event=key_revoked") && stderr.contains(&revoked.kid),
        "audit-logged: {stderr}"
    );
    assert!(!jwks.contains(&revoked.kid), "{jwks}");
    assert!(!jwks.contains(&revoked_access), "{jwks}");
    assert_eq!(userinfo_old, 401, "its access token is refused");
    assert_eq!(introspected.body["active"], false, "{}", introspected.body);
    assert_eq!(
        refreshed.status, 200,
        "the grant refreshes: {}",
        refreshed.body
    );
    let new_kid = kid_of(&refreshed.text("id_token"));
    assert_ne!(new_kid, revoked.kid);
    assert_eq!(
        new_kid,
        app.state.keys.active().kid,
        "signed by the new key"
    );
    assert!(jwks.contains(&new_kid), "{jwks}");
    assert_eq!(
        userinfo_status(&app, &refreshed.text("access_token")).await,
        200
    );
    assert_eq!(
        listed_state(&app.state.settings.keys.dir, &revoked.kid).as_deref(),
        Some("revoked")
    );
}

#[tokio::test]
async fn sighup_makes_a_running_process_drop_a_revoked_key_at_once() {
    // Arrange: a real process (its keys folder re-read every 60 s by default).
    let process = ServeProcess::start("").await;
    let kids = || async {
        reqwest::get(format!("{}/jwks.json", process.address))
            .await
            .expect("jwks answers")
            .text()
            .await
            .expect("a body")
    };
    let jwks: serde_json::Value = serde_json::from_str(&kids().await).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let config = process.config.display().to_string();
    let pid_file = process.pid_file.display().to_string();
    let cwd = tempfile::tempdir().unwrap();

    // Act
    let revoked = run_guildgate(
        cwd.path(),
        &["--config", &config, "keys", "revoke", &kid],
        &[],
    );
    let signalled = run_guildgate(cwd.path(), &["reload", "--pid-file", &pid_file], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut published = kids().await;
    while published.contains(&kid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        published = kids().await;
    }

    // Assert
    assert!(revoked.status.success(), "{}", stderr_of(&revoked));
    assert!(signalled.status.success(), "{}", stderr_of(&signalled));
    assert!(
        !published.contains(&kid),
        "gone well before keys.reload_every: {published}\n{}",
        process.log()
    );
    assert!(published.contains("\"kid\""), "a new key is published");
}

#[test]
fn a_kid_beginning_with_a_hyphen_is_taken_as_the_kid_not_as_an_option() {
    // Arrange: kids are base64url thumbprints, so about one in 64 begins with `-`.
    let dir = tempfile::tempdir().unwrap();
    guildgate::keys::KeySet::load_or_generate(dir.path(), time::OffsetDateTime::now_utc()).unwrap();

    // Act
    let out = keys_command(dir.path(), &["revoke", "-5notakid"]);

    // Assert: the key lookup answered (no such key), not the argument parser.
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("-5notakid") && !stderr_of(&out).contains("unexpected argument"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn keys_list_before_any_key_exists_says_there_are_none() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("keys");

    // Act
    let out = keys_command(&missing, &["list"]);

    // Assert
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("no signing keys in"),
        "{}",
        stdout_of(&out)
    );
    assert!(!missing.exists(), "listing creates nothing");
}

#[test]
fn keys_rotate_describes_the_new_key_as_keys_list_then_shows_it() {
    // Arrange: an empty folder, and one whose key has signed for a minute.
    let empty = tempfile::tempdir().unwrap();
    let used = tempfile::tempdir().unwrap();
    let a_minute_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    guildgate::keys::KeySet::load_or_generate(used.path(), a_minute_ago).unwrap();

    for dir in [empty.path(), used.path()] {
        // Act
        let out = keys_command(dir, &["rotate"]);

        // Assert
        assert!(out.status.success(), "{}", stderr_of(&out));
        let said = stdout_of(&out);
        let kid = said
            .strip_prefix("new signing key ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{said}"));
        assert!(said.contains("state: active"), "{said}");
        assert_eq!(listed_state(dir, kid).as_deref(), Some("active"), "{said}");
    }
    let keys = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pem")
            })
            .count()
    };
    assert_eq!(keys(empty.path()), 1, "one key on an empty folder, not two");
    assert_eq!(keys(used.path()), 2);
}

#[test]
fn a_key_command_before_any_database_exists_creates_none_and_says_when_processes_see_it() {
    // Arrange: the default configuration (SQLite at data/guildgate.db) in a fresh folder.
    let cwd = tempfile::tempdir().unwrap();
    let keys = cwd.path().join("keys").display().to_string();

    // Act
    let out = run_guildgate(
        cwd.path(),
        &["keys", "rotate"],
        &[("GUILDGATE__KEYS__DIR", &keys)],
    );

    // Assert
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("next reload of the folder"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        !cwd.path().join("data").join("guildgate.db").exists(),
        "no empty database is made for the announcement"
    );
}
