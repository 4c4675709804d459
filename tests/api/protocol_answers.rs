//! Stricter protocol answers: `max_age=0` and unknown `prompt` values (OIDC Core §3.1.2.1),
//! logout with a hint of one client and the `client_id` of another (RP-Initiated Logout §2),
//! `/token` without `redirect_uri` or with a malformed `code_verifier` (RFC 6749 §4.1.3,
//! RFC 7636 §4.6), and bad upstream callbacks (400 pages, not 502).

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, APP_SECRET, OTHER_RP, Reply, Rp, TestApp, authorize_page,
    callback_url_after_discord, client_toml, goes_to_discord, pkce, redirect_params, spawn_app,
    spawn_app_with, tokens_via,
};

/// Alice's code for `app` in `browser` (via Discord the first time, from the session after).
async fn code(app: &TestApp, browser: &mut Browser, extra: &[(&str, &str)]) -> String {
    let url = app.authorize_url(APP, APP_REDIRECT, extra);
    let page = authorize_page(app, browser, &url, ALICE).await;
    redirect_params(&page)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("a code: {:?} {}", page.location, page.body))
}

/// Whether the browser's session answers `prompt=none` for `app` with a code.
async fn still_signed_in(app: &TestApp, browser: &mut Browser) -> bool {
    let page = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none")]))
        .await;
    redirect_params(&page).contains_key("code")
}

#[tokio::test]
async fn max_age_zero_re_authenticates_even_within_the_same_second() {
    // Arrange: Alice has just signed in (the clock has not moved).
    let app = spawn_app().await;
    let mut browser = Browser::new();
    code(&app, &mut browser, &[]).await;

    // Act
    let again = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("max_age", "0")]))
        .await;
    let silent = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("max_age", "0"), ("prompt", "none")]))
        .await;

    // Assert
    let to = again.location.unwrap_or_default();
    assert!(goes_to_discord(&app, &to), "a fresh Discord login: {to}");
    assert_eq!(
        redirect_params(&silent).get("error").map(String::as_str),
        Some("login_required")
    );
}

#[tokio::test]
async fn an_unknown_prompt_value_is_invalid_request_and_select_account_asks_discord() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    code(&app, &mut browser, &[]).await;

    // Act
    let unknown = browser
        .get(&app.authorize_url(
            APP,
            APP_REDIRECT,
            &[("prompt", "consent bogus"), ("state", "st")],
        ))
        .await;
    let select = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("prompt", "select_account")]))
        .await;

    // Assert
    let params = redirect_params(&unknown);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(params.get("state").map(String::as_str), Some("st"));
    let to = select.location.unwrap_or_default();
    assert!(
        goes_to_discord(&app, &to),
        "accounts are chosen at Discord: {to}"
    );
}

#[tokio::test]
async fn logout_with_the_hint_of_one_client_and_the_client_id_of_another_is_an_error_page() {
    // Arrange: Alice's ID token is from `other`; `bye` is registered for the `rp` client.
    let rp = Rp {
        id: "rp",
        secret: "rp-secret-rp-secret-rp-secret",
        redirect: "https://rp.example.com/cb",
    };
    let bye = "https://rp.example.com/bye";
    let app = spawn_app_with(&client_toml(
        rp,
        &format!("post_logout_redirect_uris = [\"{bye}\"]"),
    ))
    .await;
    let mut browser = Browser::new();
    let tokens: Reply = tokens_via(&app, &mut browser, OTHER_RP, &[], ALICE).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &tokens.text("id_token"))
        .append_pair("client_id", rp.id)
        .append_pair("post_logout_redirect_uri", bye)
        .finish();

    // Act
    let page = browser
        .get(&format!("{}/logout?{query}", app.address))
        .await;

    // Assert
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.location, None, "never a redirect");
    assert!(
        still_signed_in(&app, &mut browser).await,
        "nothing was changed"
    );
}

#[tokio::test]
async fn a_token_request_without_redirect_uri_is_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let code = code(&app, &mut Browser::new(), &[]).await;

    // Act
    let reply = Reply::read(
        app.token(
            Some((APP, APP_SECRET)),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await,
    )
    .await;

    // Assert
    assert_eq!(
        (reply.status, reply.error()),
        (400, "invalid_request"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_malformed_code_verifier_is_invalid_grant() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let cases = [
        ("abc".to_owned(), "too short"),
        ("a".repeat(129), "too long"),
        (
            format!("{}!", "a".repeat(42)),
            "a character outside the RFC 7636 set",
        ),
    ];

    for (verifier, what) in cases {
        let (challenge, _) = pkce();
        let code = code(
            &app,
            &mut browser,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;

        // Act
        let reply = Reply::read(app.redeem(&code, APP_REDIRECT, Some(&verifier)).await).await;

        // Assert
        assert_eq!(
            (reply.status, reply.error()),
            (400, "invalid_grant"),
            "{what}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_callback_with_the_wrong_iss_or_another_browser_s_state_is_a_400_page() {
    // Arrange: a login approved at Discord, and a second browser with a login of its own.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let callback = callback_url_after_discord(&app, &mut browser, "st").await;
    let mut other = Browser::new();
    callback_url_after_discord(&app, &mut other, "st2").await;
    let mut url = url::Url::parse(&callback).expect("callback URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(&pairs)
        .append_pair("iss", "https://evil.example");

    // Act
    let wrong_browser = other.get(&callback).await;
    let wrong_iss = browser.get(url.as_str()).await;

    // Assert
    assert_eq!(wrong_browser.status, 400, "{}", wrong_browser.body);
    assert_eq!(wrong_iss.status, 400, "{}", wrong_iss.body);
    let link = crate::helpers::first_link(&wrong_iss.body);
    assert!(
        link.is_none_or(|l| !query_of(&l).contains_key("code")),
        "no code for the app"
    );
}
