//! The `refresh_token` grant: rotation, reuse detection (family revoke), scope narrowing,
//! client binding, the refreshed ID token, idle and absolute lifetimes, and who gets a
//! refresh token at all.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, APP_RP, OFFLINE_RP, OTHER_RP, Reply, TestApp, introspect_as, offline_client_toml,
    offline_tokens_via, refresh_as, spawn_app, spawn_app_with, tokens_via, userinfo_status,
};
use std::sync::Arc;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// Short refresh lifetimes. `[tokens]` comes first: the test clients' `[[clients]]` tables
/// precede this text, and a table header ends the last of them.
const SHORT_LIFETIMES: &str =
    "[tokens]\nrefresh_token_idle_ttl = \"1h\"\nrefresh_token_ttl = \"2h\"\n";

/// Alice signs in to `other` (which may refresh) with `scope`; the token response.
async fn signed_in(app: &TestApp, scope: &str) -> Reply {
    tokens_via(
        app,
        &mut Browser::new(),
        OTHER_RP,
        &[("scope", scope)],
        ALICE,
    )
    .await
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_the_old_one_then_fails() {
    // Arrange
    let app = spawn_app().await;
    let first = signed_in(&app, "openid").await;
    let old = first.text("refresh_token");

    // Act
    let rotated = refresh_as(&app, OTHER_RP, &old, None).await;

    // Assert
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.text("refresh_token");
    assert_ne!(new, old, "every refresh issues a new refresh token");
    assert_ne!(
        rotated.text("access_token"),
        first.text("access_token"),
        "and a new access token"
    );
    assert_eq!(
        userinfo_status(&app, &rotated.text("access_token")).await,
        200
    );
    let old_again = refresh_as(&app, OTHER_RP, &old, None).await;
    assert_eq!(old_again.status, 400, "{}", old_again.body);
    assert_eq!(old_again.error(), "invalid_grant");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_is_invalid_grant_and_revokes_the_whole_family() {
    // Arrange: two rotations, so the family has a history and a newest member.
    let app = spawn_app().await;
    let first = signed_in(&app, "openid profile").await;
    let second = refresh_as(&app, OTHER_RP, &first.text("refresh_token"), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let third = refresh_as(&app, OTHER_RP, &second.text("refresh_token"), None).await;
    assert_eq!(third.status, 200, "{}", third.body);
    let newest_refresh = third.text("refresh_token");
    let newest_access = third.text("access_token");
    assert_eq!(userinfo_status(&app, &newest_access).await, 200);

    // Act: the first (long rotated) refresh token is replayed, as a thief would.
    let replay = refresh_as(&app, OTHER_RP, &first.text("refresh_token"), None).await;

    // Assert
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.error(), "invalid_grant");
    let newest = refresh_as(&app, OTHER_RP, &newest_refresh, None).await;
    assert_eq!(
        (newest.status, newest.error()),
        (400, "invalid_grant"),
        "the newest refresh token of the family is revoked too"
    );
    assert_eq!(
        userinfo_status(&app, &newest_access).await,
        401,
        "the access token from the last refresh is revoked"
    );
    let introspection = introspect_as(&app, Some(OTHER_RP), &newest_access).await;
    assert_eq!(introspection.status, 200);
    assert_eq!(introspection.body, serde_json::json!({"active": false}));
    let introspected_refresh = introspect_as(&app, Some(OTHER_RP), &newest_refresh).await;
    assert_eq!(
        introspected_refresh.body,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn five_concurrent_refreshes_with_one_token_give_exactly_one_success() {
    // Arrange
    let app = spawn_app().await;
    let token = signed_in(&app, "openid").await.text("refresh_token");
    let start = Arc::new(tokio::sync::Barrier::new(5));

    // Act: five requests released at once.
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (http, url, token, start) = (
            app.http.clone(),
            format!("{}/token", app.address),
            token.clone(),
            start.clone(),
        );
        handles.push(tokio::spawn(async move {
            start.wait().await;
            let response = http
                .post(url)
                .basic_auth(OTHER_RP.id, Some(OTHER_RP.secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .expect("the app answers");
            Reply::read(response).await
        }));
    }
    let mut replies = Vec::new();
    for handle in handles {
        replies.push(handle.await.expect("request task"));
    }

    // Assert
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "exactly one rotation wins: {statuses:?}"
    );
    for loser in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(
            (loser.status, loser.error()),
            (400, "invalid_grant"),
            "the others are refused as OAuth errors, not server errors: {}",
            loser.body
        );
    }
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_of_the_new_tokens() {
    // Arrange
    let app = spawn_app().await;
    let first = signed_in(&app, "openid profile email").await;

    // Act
    let narrowed = refresh_as(
        &app,
        OTHER_RP,
        &first.text("refresh_token"),
        Some("openid profile"),
    )
    .await;

    // Assert
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert_eq!(narrowed.body["scope"], "openid profile");
    let access = decode_payload(&narrowed.text("access_token"));
    assert_eq!(
        access["scope"], "openid profile",
        "the access token is narrowed"
    );
    let id = decode_payload(&narrowed.text("id_token"));
    assert!(
        id.get("email").is_none(),
        "no email claim without email: {id}"
    );
    assert!(id.get("name").is_some(), "profile claims stay: {id}");
    let userinfo: serde_json::Value = app
        .userinfo(&narrowed.text("access_token"))
        .await
        .json()
        .await
        .expect("userinfo JSON");
    assert!(
        userinfo.get("email").is_none(),
        "userinfo follows the narrowed scope: {userinfo}"
    );
    let next = refresh_as(&app, OTHER_RP, &narrowed.text("refresh_token"), None).await;
    assert_eq!(
        next.body["scope"], "openid profile email",
        "without `scope` a refresh gets what was originally granted (RFC 6749 §6)"
    );
}

#[tokio::test]
async fn a_refresh_asking_for_more_scope_is_invalid_scope_and_does_not_spend_the_token() {
    // Arrange
    let app = spawn_app().await;
    let first = signed_in(&app, "openid profile").await;
    let token = first.text("refresh_token");

    // Act
    let widened = refresh_as(&app, OTHER_RP, &token, Some("openid profile email")).await;
    let afterwards = refresh_as(&app, OTHER_RP, &token, None).await;

    // Assert
    assert_eq!(widened.status, 400, "{}", widened.body);
    assert_eq!(widened.error(), "invalid_scope");
    assert_eq!(
        afterwards.status, 200,
        "the refused request did not spend the token: {}",
        afterwards.body
    );
    assert_eq!(afterwards.body["scope"], "openid profile");
}

#[tokio::test]
async fn a_refresh_token_presented_by_another_client_is_invalid_grant() {
    // Arrange
    let app = spawn_app().await;
    let token = signed_in(&app, "openid").await.text("refresh_token");

    // Act: `app` authenticates correctly but presents `other`'s refresh token.
    let stolen = refresh_as(&app, APP_RP, &token, None).await;

    // Assert
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert_eq!(stolen.error(), "invalid_grant");
    assert!(stolen.body.get("access_token").is_none());
    let owner = refresh_as(&app, OTHER_RP, &token, None).await;
    assert_eq!(
        owner.status, 200,
        "the owner's token is untouched: {}",
        owner.body
    );
}

#[tokio::test]
async fn the_refreshed_id_token_keeps_the_original_auth_time_and_subject() {
    // Arrange: sign in (with a nonce), then let five minutes pass.
    let app = spawn_app().await;
    let first = tokens_via(
        &app,
        &mut Browser::new(),
        OTHER_RP,
        &[("scope", "openid profile"), ("nonce", "n-0S6_WzA2Mj")],
        ALICE,
    )
    .await;
    let original = decode_payload(&first.text("id_token"));
    app.state.clock.advance(5 * MINUTE);

    // Act
    let refreshed = refresh_as(&app, OTHER_RP, &first.text("refresh_token"), None).await;

    // Assert: OIDC Core §12.2.
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let id = decode_payload(&refreshed.text("id_token"));
    assert_eq!(
        id["auth_time"], original["auth_time"],
        "auth_time is the sign-in's"
    );
    assert_eq!(id["sub"], original["sub"]);
    assert_eq!(id["sub"], ALICE);
    assert_eq!(id["iss"], original["iss"]);
    assert_eq!(id["aud"], original["aud"]);
    assert_eq!(id["azp"], original["azp"]);
    assert_eq!(id["sid"], original["sid"], "still the same SSO session");
    let (old_iat, new_iat) = (
        original["iat"].as_i64().expect("iat"),
        id["iat"].as_i64().expect("iat"),
    );
    assert!(
        new_iat >= old_iat + 300,
        "iat is the time of the refresh: {old_iat} -> {new_iat}"
    );
    assert!(
        id.get("nonce").is_none() || id["nonce"] == original["nonce"],
        "a nonce, if any, is the original one: {id}"
    );
}

#[tokio::test]
async fn a_refresh_token_left_unused_past_the_idle_ttl_is_invalid_grant() {
    // Arrange
    let app = spawn_app_with(SHORT_LIFETIMES).await;
    let token = signed_in(&app, "openid").await.text("refresh_token");
    app.state.clock.advance(61 * MINUTE);

    // Act
    let late = refresh_as(&app, OTHER_RP, &token, None).await;

    // Assert
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(late.error(), "invalid_grant");
}

#[tokio::test]
async fn each_refresh_restarts_the_idle_ttl() {
    // Arrange
    let app = spawn_app_with(SHORT_LIFETIMES).await;
    let first = signed_in(&app, "openid").await.text("refresh_token");
    app.state.clock.advance(50 * MINUTE);
    let second = refresh_as(&app, OTHER_RP, &first, None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    app.state.clock.advance(50 * MINUTE);

    // Act: 100 minutes after sign-in, 50 after the last use.
    let third = refresh_as(&app, OTHER_RP, &second.text("refresh_token"), None).await;

    // Assert
    assert_eq!(third.status, 200, "{}", third.body);
}

#[tokio::test]
async fn no_refresh_succeeds_past_the_absolute_lifetime_however_often_it_is_used() {
    // Arrange: refreshed every 50 minutes (inside the 1h idle TTL) up to 100 minutes.
    let app = spawn_app_with(SHORT_LIFETIMES).await;
    let mut token = signed_in(&app, "openid").await.text("refresh_token");
    for _ in 0..2 {
        app.state.clock.advance(50 * MINUTE);
        let next = refresh_as(&app, OTHER_RP, &token, None).await;
        assert_eq!(next.status, 200, "{}", next.body);
        token = next.text("refresh_token");
    }
    app.state.clock.advance(50 * MINUTE);

    // Act: 150 minutes after sign-in, past the 2h refresh_token_ttl.
    let late = refresh_as(&app, OTHER_RP, &token, None).await;

    // Assert
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(late.error(), "invalid_grant");
}

#[tokio::test]
async fn a_client_without_refresh_permission_gets_no_refresh_token_without_offline_access() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let tokens = tokens_via(
        &app,
        &mut Browser::new(),
        APP_RP,
        &[("scope", "openid profile")],
        ALICE,
    )
    .await;

    // Assert
    assert!(
        tokens.body.get("refresh_token").is_none(),
        "`app` has refresh_tokens = false: {}",
        tokens.body
    );
    assert!(tokens.body["access_token"].is_string());
}

#[tokio::test]
async fn offline_access_gets_a_refresh_token_for_a_client_without_refresh_permission() {
    // Arrange: `offline` has refresh_tokens = false but may have offline_access, with consent.
    let app = spawn_app_with(&offline_client_toml("")).await;
    let tokens = offline_tokens_via(&app, &mut Browser::new(), OFFLINE_RP, ALICE).await;

    // Act
    let token = tokens.text("refresh_token");
    let refreshed = refresh_as(&app, OFFLINE_RP, &token, None).await;

    // Assert
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(refreshed.body["refresh_token"].is_string());
    assert_eq!(
        userinfo_status(&app, &refreshed.text("access_token")).await,
        200
    );
}
