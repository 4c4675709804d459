//! Pushed authorization requests (RFC 9126): a request checked and stored at `/par`, used once
//! at `/authorize` by reference, and clients held to pushing.

use crate::browser::Browser;
use crate::helpers::{
    ALICE, APP_RP, Reply, Rp, TestApp, authorize_page, client_toml, redeem_as, redirect_params,
    spawn_app_with,
};
use std::time::Duration;

const PUSHER: Rp = Rp {
    id: "pusher",
    secret: "pusher-secret-pusher-secret",
    redirect: "https://pusher.example.com/cb",
};

async fn app() -> TestApp {
    spawn_app_with(&client_toml(
        PUSHER,
        "require_pushed_authorization_requests = true",
    ))
    .await
}

async fn push(app: &TestApp, rp: Rp, form: &[(&str, &str)]) -> Reply {
    Reply::read(
        app.http
            .post(format!("{}/par", app.address))
            .basic_auth(rp.id, Some(rp.secret))
            .form(form)
            .send()
            .await
            .expect("answers"),
    )
    .await
}

fn request(rp: Rp) -> Vec<(&'static str, &'static str)> {
    vec![
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("redirect_uri", rp.redirect),
        ("state", "pushed-state"),
    ]
}

fn by_reference(app: &TestApp, rp: Rp, request_uri: &str) -> String {
    format!(
        "{}/authorize?client_id={}&request_uri={}",
        app.address,
        rp.id,
        url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn a_pushed_request_is_used_once_by_reference() {
    // Arrange
    let app = app().await;
    let pushed = push(&app, APP_RP, &request(APP_RP)).await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    assert_eq!(pushed.header("cache-control"), "no-store");
    let request_uri = pushed.text("request_uri");
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(pushed.body["expires_in"], 60);

    // Act: the browser carries only the reference (and something that must be ignored).
    let mut browser = Browser::new();
    let url = by_reference(&app, APP_RP, &request_uri) + "&state=tampered&scope=openid%20email";
    let page = authorize_page(&app, &mut browser, &url, ALICE).await;

    // Assert: the pushed parameters were used.
    let params = redirect_params(&page);
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("pushed-state")
    );
    let tokens = redeem_as(&app, APP_RP, &params["code"]).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.text("scope"), "openid profile");
    // A second use of the reference is refused, as a page (no redirect URI is known).
    let again = browser.get(&by_reference(&app, APP_RP, &request_uri)).await;
    assert_eq!(again.status, 400);
    assert!(again.location.is_none());
}

#[tokio::test]
async fn a_reference_expires_and_belongs_to_the_client_that_pushed_it() {
    let app = app().await;
    let pushed = push(&app, APP_RP, &request(APP_RP)).await;
    let request_uri = pushed.text("request_uri");
    let mut browser = Browser::new();
    // Another client naming it gets nothing (and does not spend it).
    let other = browser.get(&by_reference(&app, PUSHER, &request_uri)).await;
    assert_eq!(other.status, 400);
    // Expired after 60 s.
    app.state.clock.advance(Duration::from_secs(61));
    let late = browser.get(&by_reference(&app, APP_RP, &request_uri)).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("expired"), "{}", late.body);
}

#[tokio::test]
async fn bad_pushed_requests_get_the_token_endpoints_errors_and_store_nothing() {
    let app = app().await;
    let mut unregistered = request(APP_RP);
    unregistered[2] = ("redirect_uri", "https://evil.example.com/cb");
    assert_eq!(
        push(&app, APP_RP, &unregistered).await.error(),
        "invalid_request"
    );
    let mut nested = request(APP_RP);
    nested.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    assert_eq!(push(&app, APP_RP, &nested).await.error(), "invalid_request");
    let mut someone_else = request(APP_RP);
    someone_else.push(("client_id", "other"));
    assert_eq!(
        push(&app, APP_RP, &someone_else).await.error(),
        "invalid_request"
    );
    let wrong_secret = Rp {
        secret: "wrong",
        ..APP_RP
    };
    assert_eq!(push(&app, wrong_secret, &request(APP_RP)).await.status, 401);
    let mut no_openid = request(APP_RP);
    no_openid[1] = ("scope", "profile");
    assert_eq!(
        push(&app, APP_RP, &no_openid).await.error(),
        "invalid_scope"
    );
}

#[tokio::test]
async fn a_client_held_to_pushing_cannot_send_a_plain_request() {
    let app = app().await;
    let mut browser = Browser::new();
    let plain = browser
        .get(&app.authorize_url(PUSHER.id, PUSHER.redirect, &[("state", "s")]))
        .await;
    let params = redirect_params(&plain);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(params.get("state").map(String::as_str), Some("s"));
    // Pushed, it goes through.
    let pushed = push(&app, PUSHER, &request(PUSHER)).await;
    let page = authorize_page(
        &app,
        &mut browser,
        &by_reference(&app, PUSHER, &pushed.text("request_uri")),
        ALICE,
    )
    .await;
    assert!(
        redirect_params(&page).contains_key("code"),
        "{:?}",
        page.location
    );
}
