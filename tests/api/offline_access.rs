//! `offline_access` (OIDC Core §11): only for a client allowed it (`offline_access = true`),
//! only with the person's consent on the request or remembered for it; otherwise the scope is
//! dropped and the grant ends with the session like any other.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, APP_RP, OFFLINE_RP, OTHER_RP, Reply, authorize_page, hidden_field, offline_client_toml,
    offline_tokens_via, redeem_as, refresh_as, spawn_app, spawn_app_with, tokens_via,
};

const OFFLINE_SCOPE: &[(&str, &str)] = &[("scope", "openid offline_access")];

fn assert_no_offline_grant(tokens: &Reply, context: &str) {
    assert_eq!(
        tokens.text("scope"),
        "openid",
        "{context}: the scope is dropped"
    );
    assert!(
        tokens.body.get("refresh_token").is_none(),
        "{context}: no refresh token: {}",
        tokens.body
    );
}

#[tokio::test]
async fn a_client_not_allowed_offline_access_gets_no_offline_grant_even_with_prompt_consent() {
    // Arrange: `app` has neither refresh_tokens nor offline_access.
    let app = spawn_app().await;

    // Act
    let tokens = tokens_via(
        &app,
        &mut Browser::new(),
        APP_RP,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
        ALICE,
    )
    .await;

    // Assert
    assert_no_offline_grant(&tokens, "a client not allowed offline_access");
}

#[tokio::test]
async fn a_refresh_token_of_a_client_not_allowed_offline_access_ends_with_the_session() {
    // Arrange: `other` gets refresh tokens (refresh_tokens = true) but not offline access.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let tokens = tokens_via(&app, &mut browser, OTHER_RP, OFFLINE_SCOPE, ALICE).await;
    let hint = tokens.text("id_token");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &hint)
        .finish();

    // Act: Alice signs out.
    let out = browser
        .get(&format!("{}/logout?{query}", app.address))
        .await;
    let refreshed = refresh_as(&app, OTHER_RP, &tokens.text("refresh_token"), None).await;

    // Assert
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(tokens.text("scope"), "openid");
    assert_eq!(
        (refreshed.status, refreshed.error()),
        (400, "invalid_grant"),
        "the grant was tied to the session: {}",
        refreshed.body
    );
}

#[tokio::test]
async fn offline_access_needs_consent_on_the_request_and_is_then_remembered() {
    // Arrange: `offline` may have offline access; its consent mode is `never`.
    let app = spawn_app_with(&offline_client_toml("")).await;
    let mut browser = Browser::new();

    // Act: asked silently, then with prompt=consent (allowed), then silently again.
    let silent = tokens_via(&app, &mut browser, OFFLINE_RP, OFFLINE_SCOPE, ALICE).await;
    let consented = offline_tokens_via(&app, &mut browser, OFFLINE_RP, ALICE).await;
    let url = app.authorize_url(OFFLINE_RP.id, OFFLINE_RP.redirect, OFFLINE_SCOPE);
    let remembered_page = authorize_page(&app, &mut browser, &url, ALICE).await;
    let code = remembered_page
        .location
        .as_deref()
        .and_then(|l| query_of(l).get("code").cloned())
        .unwrap_or_else(|| panic!("no page, a code: {}", remembered_page.body));
    let remembered = redeem_as(&app, OFFLINE_RP, &code).await;

    // Assert
    assert_no_offline_grant(&silent, "without consent");
    assert_eq!(consented.text("scope"), "openid offline_access");
    assert!(consented.body["refresh_token"].is_string());
    assert_eq!(remembered.text("scope"), "openid offline_access");
    assert!(
        remembered.body["refresh_token"].is_string(),
        "a remembered consent covers it: {}",
        remembered.body
    );
}

#[tokio::test]
async fn the_consent_page_names_offline_access_and_declining_grants_nothing() {
    // Arrange
    let app = spawn_app_with(&offline_client_toml("")).await;
    let mut browser = Browser::new();
    let url = app.authorize_url(
        OFFLINE_RP.id,
        OFFLINE_RP.redirect,
        &[("scope", "openid offline_access"), ("prompt", "consent")],
    );

    // Act
    let page = authorize_page(&app, &mut browser, &url, ALICE).await;
    let ticket = hidden_field(&page.body, "ticket").expect("the consent page");
    let declined = crate::helpers::post_as_browser(
        &app,
        &browser,
        "/consent",
        &[("ticket", &ticket), ("answer", "deny")],
    )
    .await;
    let silent_again = tokens_via(&app, &mut browser, OFFLINE_RP, OFFLINE_SCOPE, ALICE).await;

    // Assert
    assert!(
        page.body.contains("access while you are away"),
        "the page says what offline access means"
    );
    let to_app = crate::helpers::location(&declined).expect("back to the app");
    assert_eq!(query_of(&to_app)["error"], "access_denied");
    assert_no_offline_grant(&silent_again, "after declining");
}
