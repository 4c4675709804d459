//! Key rotation while guildgate runs: old tokens keep verifying, new ones use the new key.

use crate::browser::Browser;
use crate::helpers::{ALICE, spawn_app};
use crate::lifecycle_helpers::{OTHER_RP, tokens_via, userinfo_status};

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify_after_it() {
    // Arrange: a token signed by the first key.
    let app = spawn_app().await;
    let before = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    let old_kid = app.state.keys.active().kid.clone();

    // Act: `guildgate keys rotate` writes a new key; the running process reloads the folder.
    let dir = app.state.settings.keys.dir.clone();
    let now = app.state.clock.now();
    let (_, active_from) = guildgate::keys::generate_key_file(&dir, now).unwrap();
    app.state.keys.reload(active_from).unwrap();
    let after = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;

    // Assert
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    assert_eq!(kid(&before.text("access_token")), old_kid);
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
