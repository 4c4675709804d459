//! Key rotation while guildgate runs: old tokens keep verifying, new ones use the new key.

use crate::browser::Browser;
use crate::helpers::{ALICE, OTHER_RP, spawn_app, tokens_via, userinfo_status};
use std::time::Duration;

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify_after_it() {
    // Arrange: a token signed by the first key.
    let app = spawn_app().await;
    let before = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    let old_kid = app.state.keys.active().kid.clone();
    let old_access_kid = app.state.keys.active().access.as_ref().unwrap().kid.clone();

    // Act: `guildgate keys rotate` writes a new key; the running process's key job reloads the
    // folder (driven here one round, a second later: names carry whole seconds).
    let dir = app.state.settings.keys.dir.clone();
    let now = app.state.clock.now();
    guildgate::keys::generate_key_file(&dir, now).unwrap();
    app.state.clock.advance(Duration::from_secs(1));
    guildgate::jobs::maintain_keys_now(&app.state)
        .await
        .unwrap();
    let after = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;

    // Assert
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    assert_eq!(kid(&before.text("access_token")), old_access_kid);
    assert_ne!(
        kid(&after.text("id_token")),
        old_kid,
        "new tokens use the new key"
    );
    assert_eq!(
        userinfo_status(&app, &before.text("access_token")).await,
        200
    );
    let jwks: serde_json::Value = app.get("/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        4,
        "both keys are published, each with its access-token companion"
    );
}

#[tokio::test]
async fn the_key_job_prepublishes_a_successor_after_rotate_every_and_switches_after_publish_ahead()
{
    // Arrange: the defaults, rotate_every = 90 days and publish_ahead = 1 hour.
    let app = spawn_app().await;
    let first = app.state.keys.active().kid.clone();
    let published = |app: &crate::helpers::TestApp| {
        let jwks: serde_json::Value = serde_json::from_slice(&app.state.keys.jwks_json()).unwrap();
        jwks["keys"].as_array().unwrap().len()
    };

    // Act + Assert: 90 days on, a successor is published but does not sign yet.
    app.state.clock.advance(Duration::from_secs(90 * 24 * 3600));
    guildgate::jobs::maintain_keys_now(&app.state)
        .await
        .unwrap();
    assert_eq!(
        published(&app),
        4,
        "the successor and its companion are published ahead"
    );
    assert_eq!(app.state.keys.active().kid, first, "and do not sign yet");

    // An hour later it signs; the first key stays published for tokens it signed.
    app.state.clock.advance(Duration::from_secs(3600 + 1));
    guildgate::jobs::maintain_keys_now(&app.state)
        .await
        .unwrap();
    assert_ne!(app.state.keys.active().kid, first, "the successor signs");
    let tokens = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    let kid = jsonwebtoken::decode_header(tokens.text("id_token"))
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, app.state.keys.active().kid, "new ID tokens use it");
    assert!(
        app.state.keys.find(&first).is_some(),
        "the first key still verifies"
    );
}
