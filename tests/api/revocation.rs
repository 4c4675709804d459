//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): what revoking each kind of
//! token ends, the 200 for tokens the caller may not touch, client authentication, and what
//! introspection reveals (and to whom).

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, APP_RP, OTHER, OTHER_RP, Reply, TestApp, introspect_as, refresh_as, revoke_as,
    spawn_app, tokens_via, userinfo_status,
};
use serde_json::json;
use std::time::Duration;

/// Alice signs in to `other` (which may refresh) with `openid profile`; the token response.
async fn signed_in(app: &TestApp) -> Reply {
    tokens_via(
        app,
        &mut Browser::new(),
        OTHER_RP,
        &[("scope", "openid profile")],
        ALICE,
    )
    .await
}

fn inactive() -> serde_json::Value {
    json!({"active": false})
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_it_and_the_access_tokens_of_its_grant() {
    // Arrange
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let (refresh, access) = (tokens.text("refresh_token"), tokens.text("access_token"));
    assert_eq!(userinfo_status(&app, &access).await, 200);

    // Act
    let revoked = revoke_as(&app, Some(OTHER_RP), &refresh).await;

    // Assert
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let refreshed = refresh_as(&app, OTHER_RP, &refresh, None).await;
    assert_eq!(
        (refreshed.status, refreshed.error()),
        (400, "invalid_grant")
    );
    assert_eq!(
        userinfo_status(&app, &access).await,
        401,
        "the grant's access token is revoked with it"
    );
    assert_eq!(
        introspect_as(&app, Some(OTHER_RP), &refresh).await.body,
        inactive()
    );
    assert_eq!(
        introspect_as(&app, Some(OTHER_RP), &access).await.body,
        inactive()
    );
}

#[tokio::test]
async fn revoking_an_access_token_ends_only_that_access_token() {
    // Arrange: a refresh gives a second access token of the same grant.
    let app = spawn_app().await;
    let first = signed_in(&app).await;
    let second = refresh_as(&app, OTHER_RP, &first.text("refresh_token"), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let (revoked_at, other_at) = (first.text("access_token"), second.text("access_token"));
    assert_eq!(
        decode_payload(&revoked_at)["gid"],
        decode_payload(&other_at)["gid"],
        "both access tokens belong to one grant"
    );

    // Act
    let revoked = revoke_as(&app, Some(OTHER_RP), &revoked_at).await;

    // Assert
    assert_eq!(revoked.status, 200);
    assert_eq!(userinfo_status(&app, &revoked_at).await, 401);
    assert_eq!(
        introspect_as(&app, Some(OTHER_RP), &revoked_at).await.body,
        inactive()
    );
    assert_eq!(
        userinfo_status(&app, &other_at).await,
        200,
        "the grant's other access token still works"
    );
    assert_eq!(
        introspect_as(&app, Some(OTHER_RP), &other_at).await.body["active"],
        true
    );
    let refreshed = refresh_as(&app, OTHER_RP, &second.text("refresh_token"), None).await;
    assert_eq!(
        refreshed.status, 200,
        "the grant lives on: {}",
        refreshed.body
    );
}

#[tokio::test]
async fn revoking_an_unknown_token_answers_200() {
    // Arrange
    let app = spawn_app().await;
    let unknown = [
        "no-such-token",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "x",
    ];

    for token in unknown {
        // Act
        let revoked = revoke_as(&app, Some(OTHER_RP), token).await;

        // Assert
        assert_eq!(
            revoked.status, 200,
            "RFC 7009 §2.2 for {token:?}: {:?}",
            revoked.body
        );
    }
}

#[tokio::test]
async fn revoking_another_clients_token_answers_200_but_the_token_keeps_working() {
    // Arrange
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let (refresh, access) = (tokens.text("refresh_token"), tokens.text("access_token"));

    // Act: `app` tries to revoke `other`'s tokens.
    let refresh_revoked = revoke_as(&app, Some(APP_RP), &refresh).await;
    let access_revoked = revoke_as(&app, Some(APP_RP), &access).await;

    // Assert
    assert_eq!(refresh_revoked.status, 200);
    assert_eq!(access_revoked.status, 200);
    assert_eq!(
        userinfo_status(&app, &access).await,
        200,
        "the access token works"
    );
    let refreshed = refresh_as(&app, OTHER_RP, &refresh, None).await;
    assert_eq!(
        refreshed.status, 200,
        "the refresh token works: {}",
        refreshed.body
    );
}

#[tokio::test]
async fn revoke_and_introspect_without_client_authentication_are_invalid_client() {
    // Arrange
    let app = spawn_app().await;
    let access = signed_in(&app).await.text("access_token");
    let wrong_secret = crate::helpers::Rp {
        secret: "not-the-secret-of-other",
        ..OTHER_RP
    };

    for (path, rp) in [
        ("/revoke", None),
        ("/introspect", None),
        ("/revoke", Some(wrong_secret)),
        ("/introspect", Some(wrong_secret)),
    ] {
        // Act
        let reply = if path == "/revoke" {
            revoke_as(&app, rp, &access).await
        } else {
            introspect_as(&app, rp, &access).await
        };

        // Assert
        let case = format!(
            "{path} with {}",
            if rp.is_some() {
                "a wrong secret"
            } else {
                "no client"
            }
        );
        assert_eq!(reply.status, 401, "{case}: {:?}", reply.body);
        assert_eq!(reply.error(), "invalid_client", "{case}");
        assert!(
            reply.body.get("active").is_none(),
            "{case}: nothing is revealed"
        );
    }
    assert_eq!(
        userinfo_status(&app, &access).await,
        200,
        "the unauthenticated revocation did nothing"
    );
}

#[tokio::test]
async fn introspecting_an_active_access_token_describes_it() {
    // Arrange
    let app = spawn_app().await;
    let access = signed_in(&app).await.text("access_token");
    let payload = decode_payload(&access);

    // Act
    let reply = introspect_as(&app, Some(OTHER_RP), &access).await;

    // Assert
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let body = &reply.body;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["client_id"], OTHER);
    assert_eq!(body["sub"], ALICE);
    assert_eq!(body["iss"], app.address);
    assert!(
        body["aud"] == OTHER
            || body["aud"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(OTHER))),
        "aud names the client: {body}"
    );
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
    assert_eq!(body["exp"], payload["exp"]);
    assert_eq!(body["iat"], payload["iat"]);
    assert_eq!(
        body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
        600,
        "access_token_ttl is 10m"
    );
}

#[tokio::test]
async fn introspecting_a_refresh_token_says_active_with_token_type_refresh_token() {
    // Arrange
    let app = spawn_app().await;
    let refresh = signed_in(&app).await.text("refresh_token");

    // Act
    let reply = introspect_as(&app, Some(OTHER_RP), &refresh).await;

    // Assert
    let body = &reply.body;
    assert_eq!(reply.status, 200);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], OTHER);
    assert_eq!(body["sub"], ALICE);
    assert_eq!(body["scope"], "openid profile");
    assert!(body["exp"].as_i64().is_some(), "{body}");
}

#[tokio::test]
async fn an_expired_access_token_introspects_as_inactive_while_its_refresh_token_is_active() {
    // Arrange
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    app.state.clock.advance(Duration::from_secs(11 * 60));

    // Act
    let access = introspect_as(&app, Some(OTHER_RP), &tokens.text("access_token")).await;
    let refresh = introspect_as(&app, Some(OTHER_RP), &tokens.text("refresh_token")).await;

    // Assert
    assert_eq!(access.status, 200);
    assert_eq!(access.body, inactive(), "past access_token_ttl (10m)");
    assert_eq!(refresh.body["active"], true, "refresh tokens live longer");
}

#[tokio::test]
async fn an_expired_refresh_token_introspects_as_inactive() {
    // Arrange
    let app = spawn_app().await;
    let refresh = signed_in(&app).await.text("refresh_token");
    app.state.clock.advance(Duration::from_secs(8 * 24 * 3600));

    // Act
    let reply = introspect_as(&app, Some(OTHER_RP), &refresh).await;

    // Assert
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, inactive(), "past refresh_token_idle_ttl (7d)");
}

#[tokio::test]
async fn malformed_tokens_and_id_tokens_introspect_as_inactive() {
    // Arrange
    let app = spawn_app().await;
    let id_token = signed_in(&app).await.text("id_token");
    let cases = [
        ("garbage", "not-a-token".to_owned()),
        ("three dots", "a.b.c".to_owned()),
        (
            "an unsigned JWT",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
        ),
        ("an ID token (not an access token)", id_token),
    ];

    for (case, token) in cases {
        // Act
        let reply = introspect_as(&app, Some(OTHER_RP), &token).await;

        // Assert
        assert_eq!(reply.status, 200, "{case}");
        assert_eq!(reply.body, inactive(), "{case}");
    }
}

#[tokio::test]
async fn another_clients_tokens_introspect_as_inactive() {
    // Arrange
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;

    for kind in ["access_token", "refresh_token"] {
        // Act: `app` asks about `other`'s token.
        let reply = introspect_as(&app, Some(APP_RP), &tokens.text(kind)).await;

        // Assert
        assert_eq!(reply.status, 200, "{kind}");
        assert_eq!(reply.body, inactive(), "{kind} of another client");
    }
}

#[tokio::test]
async fn a_token_from_another_issuer_introspects_as_inactive() {
    // Arrange: another guildgate (other keys, other issuer) issues a token to a client of the
    // same name.
    let app = spawn_app().await;
    let elsewhere = spawn_app().await;
    let foreign = signed_in(&elsewhere).await;

    for kind in ["access_token", "refresh_token"] {
        // Act
        let reply = introspect_as(&app, Some(OTHER_RP), &foreign.text(kind)).await;

        // Assert
        assert_eq!(reply.status, 200, "{kind}");
        assert_eq!(reply.body, inactive(), "a foreign {kind}");
    }
}

#[tokio::test]
async fn a_wrong_token_type_hint_does_not_stop_a_revocation() {
    // Arrange
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let refresh = tokens.text("refresh_token");

    // Act: the refresh token is sent with the access token hint (RFC 7009 §2.1: only a hint).
    let response = app
        .http
        .post(format!("{}/revoke", app.address))
        .basic_auth(OTHER_RP.id, Some(OTHER_RP.secret))
        .form(&[
            ("token", refresh.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .expect("the app answers");

    // Assert
    assert_eq!(response.status(), 200);
    let refreshed = refresh_as(&app, OTHER_RP, &refresh, None).await;
    assert_eq!(
        (refreshed.status, refreshed.error()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn revoke_and_introspect_without_a_token_are_invalid_request() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/revoke", "/introspect"] {
        // Act
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .basic_auth(OTHER_RP.id, Some(OTHER_RP.secret))
            .form(&[("token_type_hint", "access_token")])
            .send()
            .await
            .expect("the app answers");

        // Assert
        let reply = Reply::read(response).await;
        assert_eq!(
            (reply.status, reply.error()),
            (400, "invalid_request"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_introspects_as_inactive() {
    // Arrange
    let app = spawn_app().await;
    let old = signed_in(&app).await.text("refresh_token");
    let rotated = refresh_as(&app, OTHER_RP, &old, None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);

    // Act
    let reply = introspect_as(&app, Some(OTHER_RP), &old).await;

    // Assert
    assert_eq!(
        reply.body,
        inactive(),
        "a spent refresh token is not active"
    );
    let current = introspect_as(&app, Some(OTHER_RP), &rotated.text("refresh_token")).await;
    assert_eq!(current.body["active"], true, "its successor is");
}
