//! The security rules a person or an app would notice first: cookies, replays, reuse.

use crate::browser::{Browser, query_of};
use crate::helpers::{ALICE, APP, APP_REDIRECT, spawn_app};
use guildgate::discord::fake::FakeRoute;

#[tokio::test]
async fn a_callback_without_the_binding_cookie_is_refused_before_discord_is_called() {
    // Arrange: the login starts in one browser ...
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let start = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[]))
        .await;
    assert!(
        browser.cookie(&app.address, "guildgate_login").is_some(),
        "binding cookie set"
    );
    app.discord.sign_in_as(Some(ALICE));
    let back = browser.get(&start.location.unwrap()).await;
    // ... and the callback URL is opened where that cookie is missing.
    browser.forget(&app.address, "guildgate_login");

    // Act
    let page = browser.get(&back.location.unwrap()).await;

    // Assert
    assert_eq!(page.status, 400);
    assert!(page.location.is_none(), "never redirects");
    assert!(page.body.contains("cannot be completed"), "{}", page.body);
    assert_eq!(
        app.discord.calls(FakeRoute::Token),
        0,
        "Discord was not asked"
    );
    assert!(
        browser.cookie(&app.address, "guildgate_session").is_none(),
        "no session"
    );
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_the_first_redemption_issued() {
    // Arrange
    let app = spawn_app().await;
    let code = app
        .code_for(&mut Browser::new(), APP, APP_REDIRECT, &[], ALICE)
        .await;
    let first: serde_json::Value = app
        .redeem(&code, APP_REDIRECT, None)
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);

    // Act
    let second = app.redeem(&code, APP_REDIRECT, None).await;

    // Assert
    assert_eq!(second.status(), 400);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let after = app.userinfo(access).await;
    assert_eq!(
        after.status(),
        401,
        "the first redemption's access token is revoked"
    );
    let challenge = after.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let start = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[]))
        .await;
    app.discord.sign_in_as(Some(ALICE));
    let back = browser.get(&start.location.unwrap()).await;

    // Act: read the raw Set-Cookie of the callback.
    let cookie = format!(
        "guildgate_login={}",
        browser.cookie(&app.address, "guildgate_login").unwrap()
    );
    let response = app
        .http
        .get(back.location.unwrap())
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();

    // Assert
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("guildgate_session="))
        .expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(query_of(location).contains_key("code"));
}

#[tokio::test]
async fn browser_apps_at_registered_origins_may_call_the_token_endpoint_and_others_may_not() {
    // Arrange
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/token", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    // Act
    let registered = preflight("https://app.example.com").await.unwrap();
    let stranger = preflight("https://evil.example").await.unwrap();

    // Assert
    assert_eq!(
        registered
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(
        registered
            .headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "no cookies cross-origin"
    );
}
