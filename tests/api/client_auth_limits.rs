//! Client authentication under attack: failed attempts are limited per source address and per
//! client id before argon2 runs (429 with `Retry-After`), the app holding the real secret is not
//! locked out, and malformed credentials are `invalid_client` (RFC 6749 §5.2).

use crate::helpers::{APP, APP_SECRET, Reply, TestApp, spawn_app, spawn_app_with};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The JSON body of a refused attempt, as documented in `config/default.toml`.
const TOO_MANY: &str = "too many failed attempts; retry later";

/// An HTTP client whose requests come from `source` (any 127.0.0.0/8 address reaches the app).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .expect("http client")
}

/// `POST /introspect` authenticated as `id` with `secret` (Basic), from `http`.
async fn introspect(app: &TestApp, http: &reqwest::Client, id: &str, secret: &str) -> Reply {
    let response = http
        .post(format!("{}/introspect", app.address))
        .basic_auth(id, Some(secret))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .expect("the app answers");
    Reply::read(response).await
}

fn assert_too_many(answer: &Reply, context: &str) {
    assert_eq!(answer.status, 429, "{context}: {:?}", answer.body);
    assert_eq!(answer.error(), "temporarily_unavailable", "{context}");
    assert_eq!(answer.body["error_description"], TOO_MANY, "{context}");
    let retry_after: u64 = answer
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("{context}: Retry-After is whole seconds"));
    assert!(retry_after >= 1, "{context}: Retry-After {retry_after}");
    assert_eq!(answer.header("cache-control"), "no-store", "{context}");
}

#[tokio::test]
async fn wrong_secrets_beyond_the_per_address_limit_get_429_even_with_the_right_secret() {
    // Arrange: the default limit is 10 failures per minute per address.
    let app = spawn_app().await;
    for i in 0..10 {
        let answer = introspect(&app, &app.http, APP, "wrong-secret").await;
        assert_eq!(answer.status, 401, "attempt {i} is an ordinary failure");
    }

    // Act
    let wrong = introspect(&app, &app.http, APP, "wrong-secret").await;
    let unknown = introspect(&app, &app.http, "no-such-client", "whatever").await;
    let right = introspect(&app, &app.http, APP, APP_SECRET).await;

    // Assert: refused before the secret is looked at, so the answer tells nothing about it.
    assert_too_many(&wrong, "a wrong secret");
    assert_too_many(&unknown, "an unknown client");
    assert_too_many(&right, "the right secret from the same address");
}

#[tokio::test]
async fn one_address_failing_does_not_refuse_another_address() {
    // Arrange: 127.0.0.2 exhausts its failures.
    let app = spawn_app().await;
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for _ in 0..11 {
        introspect(&app, &attacker, APP, "wrong-secret").await;
    }
    assert_eq!(introspect(&app, &attacker, APP, "x").await.status, 429);

    // Act
    let app_itself = introspect(&app, &app.http, APP, APP_SECRET).await;

    // Assert
    assert_eq!(app_itself.status, 200, "{:?}", app_itself.body);
    assert_eq!(app_itself.body["active"], false);
}

#[tokio::test]
async fn a_client_over_its_failure_limit_accepts_only_a_secret_verified_before() {
    // Arrange: a per-client limit of 3 failures a minute, addresses effectively unlimited; the
    // failures come from many addresses, as from a botnet.
    let app = spawn_app_with(
        "[limits]\nfailed_auth_per_ip = \"1000/min\"\nfailed_auth_per_client = \"3/min\"\n",
    )
    .await;
    for i in 2..5 {
        let stranger = client_from(Ipv4Addr::new(127, 0, 0, i));
        assert_eq!(introspect(&app, &stranger, APP, "guess").await.status, 401);
    }

    // Act
    let fourth_guess = introspect(
        &app,
        &client_from(Ipv4Addr::new(127, 0, 0, 9)),
        APP,
        "guess",
    )
    .await;
    let unverified_right_secret = introspect(&app, &app.http, APP, APP_SECRET).await;
    app.state.clock.advance(Duration::from_secs(60));
    let after_a_minute = introspect(&app, &app.http, APP, APP_SECRET).await;
    for i in 2..6 {
        let stranger = client_from(Ipv4Addr::new(127, 0, 0, i));
        introspect(&app, &stranger, APP, "guess").await;
    }
    let verified_right_secret = introspect(&app, &app.http, APP, APP_SECRET).await;

    // Assert: over the limit nothing that needs argon2 is checked, not even the right secret;
    // once the app has authenticated, strangers' failures no longer keep it out.
    assert_too_many(&fourth_guess, "a fourth guess against the client");
    assert_too_many(&unverified_right_secret, "a secret not yet verified");
    assert_eq!(after_a_minute.status, 200, "{:?}", after_a_minute.body);
    assert_eq!(
        verified_right_secret.status, 200,
        "the app with the verified secret is not locked out: {:?}",
        verified_right_secret.body
    );
}

#[tokio::test]
async fn malformed_client_credentials_are_invalid_client_with_a_challenge() {
    // Arrange
    let app = spawn_app().await;
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cases = [
        (
            "/token",
            format!("Basic {}", b64("no-colon-here")),
            "no colon",
        ),
        ("/token", "Basic %%%not-base64%%%".to_owned(), "bad base64"),
        ("/token", "Basic ".to_owned(), "empty"),
        ("/token", format!("Basic {}", b64(":")), "empty client id"),
        ("/revoke", "Basic".to_owned(), "scheme only"),
        (
            "/introspect",
            "Bearer some-access-token".to_owned(),
            "a Bearer token",
        ),
    ];

    for (path, header, what) in cases {
        // Act
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .header("authorization", header)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("token", "t"),
            ])
            .send()
            .await
            .expect("the app answers");
        let answer = Reply::read(response).await;

        // Assert
        assert_eq!(answer.status, 401, "{what} at {path}: {:?}", answer.body);
        assert_eq!(answer.error(), "invalid_client", "{what} at {path}");
        assert!(
            answer.header("www-authenticate").starts_with("Basic"),
            "{what} at {path}: a Basic challenge"
        );
    }
}
