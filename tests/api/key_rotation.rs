//! Key rotation while guildgate runs: old tokens keep verifying, new ones use the new key.

use crate::browser::Browser;
use crate::helpers::{ALICE, OTHER, OTHER_REDIRECT, OTHER_SECRET, TestApp, spawn_app};

async fn signed_in(app: &TestApp, browser: &mut Browser) -> serde_json::Value {
    let code = app
        .code_for(
            browser,
            OTHER,
            OTHER_REDIRECT,
            &[("scope", "openid profile")],
            ALICE,
        )
        .await;
    let response = app
        .token(
            Some((OTHER, OTHER_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", OTHER_REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify_after_it() {
    // Arrange: a token signed by the first key.
    let app = spawn_app().await;
    let before = signed_in(&app, &mut Browser::new()).await;
    let old_kid = app.state.keys.active().kid.clone();

    // Act: `guildgate keys rotate` writes a new key; the running process reloads the folder.
    let dir = app.state.settings.keys.dir.clone();
    let now = app.state.clock.now();
    let (_, active_from) = guildgate::keys::generate_key_file(&dir, now).unwrap();
    app.state.keys.reload(active_from).unwrap();
    let after = signed_in(&app, &mut Browser::new()).await;

    // Assert
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    assert_eq!(kid(before["access_token"].as_str().unwrap()), old_kid);
    assert_ne!(
        kid(after["id_token"].as_str().unwrap()),
        old_kid,
        "new tokens use the new key"
    );
    assert_eq!(
        app.userinfo(before["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let jwks: serde_json::Value = app.get("/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "both keys are published"
    );
}
