//! `/userinfo` (OIDC Core §5.3, RFC 6750): where the bearer token may be, which tokens are
//! refused with an `invalid_token` challenge, and which claims a scope releases.

use crate::helpers::{ALICE, Reply, TestApp, spawn_app, tokens_for};
use std::time::Duration;

/// GET /userinfo with a raw `Authorization` header value.
async fn with_authorization(app: &TestApp, value: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/userinfo", app.address))
        .header("authorization", value)
        .send()
        .await
        .expect("userinfo request")
}

/// Asserts a 401 whose `WWW-Authenticate` is a Bearer challenge with `error="invalid_token"`.
fn assert_invalid_token(response: &reqwest::Response, why: &str) {
    assert_eq!(response.status(), 401, "{why}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "{why}: a Bearer challenge, got {challenge:?}"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{why}: the challenge names invalid_token, got {challenge:?}"
    );
}

/// `jwt` with one character of its payload changed (still valid base64url).
fn tampered(jwt: &str) -> String {
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let payload = &mut parts[1];
    let middle = payload.len() / 2;
    let original = payload.as_bytes()[middle];
    let replacement = if original == b'A' { "B" } else { "A" };
    payload.replace_range(middle..=middle, replacement);
    parts.join(".")
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();

    for scheme in ["bearer", "BEARER", "Bearer"] {
        // Act
        let response = with_authorization(&app, &format!("{scheme} {access}")).await;

        // Assert
        assert_eq!(
            response.status(),
            200,
            "RFC 6750 §2.1: scheme {scheme:?} is accepted"
        );
    }
}

#[tokio::test]
async fn the_access_token_may_be_sent_in_a_form_body() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();

    // Act
    let response = app
        .http
        .post(format!("{}/userinfo", app.address))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();

    // Assert
    let answer = Reply::read(response).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["sub"], ALICE);
}

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_a_bearer_challenge() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .http
        .get(format!("{}/userinfo", app.address))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 401);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate header")
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    // RFC 6750 §3.1: without credentials the challenge carries no error code.
    assert!(!challenge.contains("error="), "{challenge}");
}

#[tokio::test]
async fn a_garbage_or_tampered_token_gets_invalid_token() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.userinfo(access).await.status(),
        200,
        "the real token works"
    );
    let cases = [
        ("not-a-token-at-all".to_owned(), "garbage"),
        (tampered(access), "one payload character changed"),
    ];

    for (token, why) in cases {
        // Act
        let response = app.userinfo(&token).await;

        // Assert
        assert_invalid_token(&response, why);
    }
}

#[tokio::test]
async fn an_id_token_is_not_accepted_as_an_access_token() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // Act
    let response = app.userinfo(id_token).await;

    // Assert
    assert_invalid_token(&response, "an ID token as bearer");
}

#[tokio::test]
async fn an_expired_access_token_gets_invalid_token() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.state.clock.advance(Duration::from_secs(11 * 60));

    // Act
    let response = app.userinfo(access).await;

    // Assert
    assert_invalid_token(&response, "11 minutes after issue (ttl 10 min)");
}

#[tokio::test]
async fn with_only_the_openid_scope_userinfo_returns_just_sub() {
    // Arrange
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();

    // Act
    let answer = Reply::read(app.userinfo(access).await).await;

    // Assert
    assert_eq!(answer.status, 200);
    let claims = answer.body.as_object().expect("a JSON object");
    let names: Vec<&String> = claims.keys().collect();
    assert_eq!(names, ["sub"], "only sub for scope openid: {claims:?}");
    assert_eq!(claims["sub"], ALICE);
}

#[tokio::test]
async fn an_access_token_in_the_query_string_is_refused_with_invalid_request() {
    // Arrange: a valid token, sent where RFC 6750 §2.3 allows it but we do not.
    let app = spawn_app().await;
    let tokens = tokens_for(&app, "openid").await;
    let access = tokens["access_token"].as_str().unwrap();

    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        // Act
        let response = app
            .http
            .request(
                method.clone(),
                format!("{}/userinfo?access_token={access}", app.address),
            )
            .send()
            .await
            .unwrap();

        // Assert
        let answer = Reply::read(response).await;
        assert_eq!(answer.status, 400, "{method}: {:?}", answer.body);
        assert_eq!(answer.error(), "invalid_request", "{method}");
        assert!(answer.body.get("sub").is_none(), "{method}: no claims");
    }
}
