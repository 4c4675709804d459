//! `GET /metrics` for the grants beyond the code flow: every new series is in the first scrape
//! (at 0, so dashboards and alerts see them before the first use), then counts: service and
//! device tokens by grant type, device sign-ins by outcome, pushed requests, DPoP proofs by
//! outcome.

use crate::browser::Browser;
use crate::device_flow::{answer, enter_code, poll, start};
use crate::helpers::{ALICE, OTHER, OTHER_REDIRECT, OTHER_SECRET, Reply, TestApp, spawn_app_with};
use crate::metrics::Scrape;
use crate::proof_keys::AppKey;

/// A public device client and a service client held to DPoP.
const CLIENTS: &str = r#"
[secrets]
encryption_key = "0000000000000000000000000000000000000000000000000000000000000002"

[[clients]]
id = "counted-cli"
name = "Counted CLI"
public = true
device_flow = true

[[clients]]
id = "counted-svc"
secret = "counted-svc-secret-counted"
client_credentials = true
allowed_scopes = ["jobs"]
dpop_bound_access_tokens = true
"#;
const SERVICE: (&str, &str) = ("counted-svc", "counted-svc-secret-counted");

/// `guildgate_token_grants_total` for `grant_type` and `outcome`.
fn grants(grant_type: &str, outcome: &str) -> String {
    format!(r#"guildgate_token_grants_total{{grant_type="{grant_type}",outcome="{outcome}"}}"#)
}

fn devices(outcome: &str) -> String {
    format!(r#"guildgate_device_authorizations_total{{outcome="{outcome}"}}"#)
}

fn proofs(outcome: &str) -> String {
    format!(r#"guildgate_dpop_proofs_total{{outcome="{outcome}"}}"#)
}

const PUSHED: &str = "guildgate_pushed_authorization_requests_total";

/// A service token request of [`SERVICE`] with `proof`.
async fn service_token(app: &TestApp, proof: &str) -> Reply {
    Reply::read(
        app.http
            .post(format!("{}/token", app.address))
            .basic_auth(SERVICE.0, Some(SERVICE.1))
            .header("DPoP", proof)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("answers"),
    )
    .await
}

#[tokio::test]
async fn the_series_of_the_new_grants_are_in_the_first_scrape_at_zero() {
    // Arrange
    let app = spawn_app_with(CLIENTS).await;

    // Act
    let scrape = Scrape::of(&app).await;

    // Assert
    let mut series = vec![
        grants("device_code", "ok"),
        grants("client_credentials", "ok"),
        PUSHED.to_owned(),
    ];
    series.extend(["requested", "approved", "denied"].map(devices));
    series.extend(["ok", "invalid", "replayed", "nonce"].map(proofs));
    for name in &series {
        assert!(scrape.has(name), "{name} is missing:\n{}", scrape.text);
        assert_eq!(scrape.value(name), 0.0, "{name}");
    }
}

#[tokio::test]
async fn device_and_service_tokens_device_answers_pushed_requests_and_proofs_are_counted() {
    // Arrange
    let app = spawn_app_with(CLIENTS).await;
    let key = AppKey::new("counted");
    let token_url = format!("{}/token", app.address);
    let now = app.state.clock.now().unix_timestamp();

    // Act: a service token with a proof, the proof replayed, a proof for another URL ...
    let proof = key.proof("POST", &token_url, now, None, None);
    let issued = service_token(&app, &proof).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(
        service_token(&app, &proof).await.error(),
        "invalid_dpop_proof"
    );
    let elsewhere = key.proof("POST", &format!("{}/par", app.address), now, None, None);
    assert_eq!(
        service_token(&app, &elsewhere).await.error(),
        "invalid_dpop_proof"
    );
    // ... two device sign-ins: one polled early, then allowed and redeemed; one declined ...
    let allowed = start(&app, "counted-cli", "openid").await;
    let declined = start(&app, "counted-cli", "openid").await;
    let early = poll(&app, "counted-cli", &allowed.text("device_code")).await;
    assert_eq!(early.error(), "authorization_pending");
    let mut browser = Browser::new();
    let (_, page) = enter_code(&app, &mut browser, &allowed.text("user_code"), ALICE).await;
    assert_eq!(answer(&app, &browser, &page, "allow").await.0, 200);
    let (_, page) = enter_code(&app, &mut browser, &declined.text("user_code"), ALICE).await;
    assert_eq!(answer(&app, &browser, &page, "deny").await.0, 200);
    let tokens = poll(&app, "counted-cli", &allowed.text("device_code")).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    // ... and a pushed request.
    let pushed = app
        .http
        .post(format!("{}/par", app.address))
        .basic_auth(OTHER, Some(OTHER_SECRET))
        .form(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", OTHER_REDIRECT),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(pushed.status(), 201);
    let scrape = Scrape::of(&app).await;

    // Assert
    let expected = [
        (grants("client_credentials", "ok"), 1.0),
        (grants("client_credentials", "invalid_dpop_proof"), 2.0),
        (grants("device_code", "ok"), 1.0),
        (grants("device_code", "authorization_pending"), 1.0),
        (devices("requested"), 2.0),
        (devices("approved"), 1.0),
        (devices("denied"), 1.0),
        (PUSHED.to_owned(), 1.0),
        (proofs("ok"), 1.0),
        (proofs("replayed"), 1.0),
        (proofs("invalid"), 1.0),
        (proofs("nonce"), 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(scrape.value(&series), value, "{series}:\n{}", scrape.text);
    }
}
