//! `POST /token` with the `authorization_code` grant: the single-use gate, binding to client,
//! redirect URI and PKCE, client authentication, and the shape of every error answer.

use crate::browser::Browser;
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, APP_SECRET, OTHER, OTHER_REDIRECT, OTHER_SECRET, Reply, SPA,
    SPA_REDIRECT, TestApp, pkce, spawn_app,
};
use std::time::{Duration, Instant};

/// Alice's code for `app` at `APP_REDIRECT`, with `extra` authorization parameters.
async fn app_code(app: &TestApp, extra: &[(&str, &str)]) -> String {
    app.code_for(&mut Browser::new(), APP, APP_REDIRECT, extra, ALICE)
        .await
}

/// The form of a plain code redemption at `APP_REDIRECT`.
fn code_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", APP_REDIRECT),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

/// Asserts an OAuth error answer: status, `error` code, and the RFC 6749 §5.1 headers.
fn assert_oauth_error(answer: &Reply, status: u16, error: &str, why: &str) {
    assert_eq!(answer.status, status, "{why}: {:?}", answer.body);
    assert_eq!(answer.error(), error, "{why}: {:?}", answer.body);
}

#[tokio::test]
async fn a_reused_code_gets_invalid_grant_and_revokes_the_first_access_token() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;
    let first = Reply::read(app.redeem(&code, APP_REDIRECT, None).await).await;
    assert_eq!(first.status, 200);
    let access = first.body["access_token"].as_str().unwrap().to_owned();

    // Act
    let second = Reply::read(app.redeem(&code, APP_REDIRECT, None).await).await;

    // Assert
    assert_oauth_error(&second, 400, "invalid_grant", "second redemption");
    assert_eq!(
        app.userinfo(&access).await.status(),
        401,
        "the first redemption's access token no longer works"
    );
}

#[tokio::test]
async fn an_expired_code_gets_invalid_grant() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;
    app.state.clock.advance(Duration::from_secs(61));

    // Act
    let answer = Reply::read(app.redeem(&code, APP_REDIRECT, None).await).await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_grant", "61 s after issue");
}

#[tokio::test]
async fn another_client_s_code_gets_invalid_grant() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;

    // Act: `other` authenticates correctly and presents `app`'s code.
    let answer = Reply::read(
        app.token(
            Some((OTHER, OTHER_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
            ],
        )
        .await,
    )
    .await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_grant", "code of another client");
}

#[tokio::test]
async fn a_different_redirect_uri_gets_invalid_grant() {
    // Arrange: the other URI is registered too, but the code was issued for the first.
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;

    // Act
    let answer = Reply::read(
        app.redeem(&code, "https://app.example.com/second?keep=1", None)
            .await,
    )
    .await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_grant", "redirect_uri mismatch");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_gets_invalid_grant() {
    // Arrange
    let app = spawn_app().await;
    let (challenge, _) = pkce();
    let (_, someone_elses_verifier) = pkce();
    let code = app_code(
        &app,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;

    // Act
    let answer = Reply::read(
        app.redeem(&code, APP_REDIRECT, Some(&someone_elses_verifier))
            .await,
    )
    .await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_grant", "verifier does not match");
}

#[tokio::test]
async fn a_verifier_without_a_challenge_gets_invalid_grant() {
    // Arrange: the authorization request had no code_challenge (RFC 9700 §2.1.1 downgrade).
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;
    let (_, verifier) = pkce();

    // Act
    let answer = Reply::read(app.redeem(&code, APP_REDIRECT, Some(&verifier)).await).await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_grant", "verifier without challenge");
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_and_its_client_id_only() {
    // Arrange
    let app = spawn_app().await;
    let (challenge, verifier) = pkce();
    let code = app
        .code_for(
            &mut Browser::new(),
            SPA,
            SPA_REDIRECT,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            ALICE,
        )
        .await;

    // Act: no Authorization header, no secret (token_endpoint_auth_method "none").
    let answer = Reply::read(
        app.token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("client_id", SPA),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;

    // Assert
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(answer.body["access_token"].is_string());
    assert!(answer.body["id_token"].is_string());
}

#[tokio::test]
async fn ten_concurrent_redemptions_of_one_code_give_exactly_one_success() {
    // Arrange
    let app = spawn_app().await;
    let code = app
        .code_for(&mut Browser::new(), OTHER, OTHER_REDIRECT, &[], ALICE)
        .await;

    // Act
    let mut handles = Vec::new();
    for _ in 0..10 {
        let (http, url, code) = (
            app.http.clone(),
            format!("{}/token", app.address),
            code.clone(),
        );
        handles.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", OTHER_REDIRECT),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }

    // Assert
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "exactly one redemption wins: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 400)),
        "the others are refused, not failed: {statuses:?}"
    );
}

#[tokio::test]
async fn a_wrong_secret_and_an_unknown_client_look_the_same_and_take_comparable_time() {
    // Arrange: `app` has an argon2 secret hash, so a wrong secret costs one argon2 run.
    let app = spawn_app().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", APP_REDIRECT),
    ];
    let timed = |id: &'static str, secret: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let answer = Reply::read(app.token(Some((id, secret)), &form).await).await;
            (answer, started.elapsed())
        }
    };
    // Warm up both paths (connection, lazy statics).
    timed(APP, "wrong-secret").await;
    timed("no-such-client", "wrong-secret").await;

    // Act: alternate, and compare the total time of each kind.
    let (mut wrong_total, mut unknown_total) = (Duration::ZERO, Duration::ZERO);
    let (mut wrong, mut unknown) = (None, None);
    for _ in 0..3 {
        let (answer, took) = timed(APP, "wrong-secret").await;
        wrong_total += took;
        wrong = Some(answer);
        let (answer, took) = timed("no-such-client", "wrong-secret").await;
        unknown_total += took;
        unknown = Some(answer);
    }
    let (wrong, unknown) = (wrong.unwrap(), unknown.unwrap());

    // Assert
    for (answer, why) in [(&wrong, "wrong secret"), (&unknown, "unknown client")] {
        assert_oauth_error(answer, 401, "invalid_client", why);
        assert!(
            !answer.header("www-authenticate").is_empty(),
            "{why}: a WWW-Authenticate challenge"
        );
    }
    assert_eq!(
        wrong.body, unknown.body,
        "the two refusals cannot be told apart"
    );
    assert!(
        unknown_total * 4 >= wrong_total,
        "an unknown client is not answered much faster (argon2 runs for both): \
         unknown {unknown_total:?} vs wrong secret {wrong_total:?}"
    );
}

#[tokio::test]
async fn client_secret_post_authenticates_the_client() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;

    // Act
    let answer = Reply::read(
        app.token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
                ("client_id", APP),
                ("client_secret", APP_SECRET),
            ],
        )
        .await,
    )
    .await;

    // Assert
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(answer.body["access_token"].is_string());
}

#[tokio::test]
async fn basic_and_post_credentials_at_once_get_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;

    // Act
    let answer = Reply::read(
        app.token(
            Some((APP, APP_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
                ("client_id", APP),
                ("client_secret", APP_SECRET),
            ],
        )
        .await,
    )
    .await;

    // Assert
    assert_oauth_error(
        &answer,
        400,
        "invalid_request",
        "two authentication methods",
    );
}

#[tokio::test]
async fn parameters_in_the_query_string_get_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(code_form(&code))
        .finish();

    // Act
    let response = app
        .http
        .post(format!("{}/token?{query}", app.address))
        .basic_auth(APP, Some(APP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    let answer = Reply::read(response).await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_request", "query-string parameters");
}

#[tokio::test]
async fn a_json_body_gets_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let code = app_code(&app, &[]).await;

    // Act
    let response = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(APP, Some(APP_SECRET))
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_REDIRECT,
        }))
        .send()
        .await
        .unwrap();
    let answer = Reply::read(response).await;

    // Assert
    assert_oauth_error(&answer, 400, "invalid_request", "JSON body");
}

#[tokio::test]
async fn an_unsupported_grant_type_gets_unsupported_grant_type() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = Reply::read(
        app.token(
            Some((OTHER, OTHER_SECRET)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "hunter2"),
            ],
        )
        .await,
    )
    .await;

    // Assert
    assert_oauth_error(&answer, 400, "unsupported_grant_type", "password grant");
}

#[tokio::test]
async fn every_token_error_is_json_with_no_store() {
    // Arrange
    let app = spawn_app().await;
    let token_url = format!("{}/token", app.address);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "nope"),
        ("redirect_uri", APP_REDIRECT),
    ];
    let requests = [
        (
            "invalid_grant",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&form),
        ),
        (
            "invalid_client",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some("wrong"))
                .form(&form),
        ),
        (
            "invalid_request (JSON body)",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .json(&serde_json::json!({"grant_type": "authorization_code"})),
        ),
        (
            "invalid_request (no code)",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&[("grant_type", "authorization_code")]),
        ),
        (
            "unsupported_grant_type",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&[("grant_type", "password")]),
        ),
        (
            "unauthorized_client (a grant this client is not registered for)",
            app.http
                .post(&token_url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&[("grant_type", "client_credentials")]),
        ),
    ];

    for (case, request) in requests {
        // Act
        let answer = Reply::read(request.send().await.unwrap()).await;

        // Assert
        assert!(
            (400..500).contains(&answer.status),
            "{case}: a client error, got {}",
            answer.status
        );
        assert_eq!(answer.header("cache-control"), "no-store", "{case}");
        assert!(
            answer
                .header("content-type")
                .starts_with("application/json"),
            "{case}: {}",
            answer.header("content-type")
        );
        assert!(
            answer.error().len() > 1 && case.starts_with(answer.error()),
            "{case}: error code {:?}",
            answer.body
        );
    }
}
