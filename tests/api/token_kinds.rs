//! Token-type confusion: every JWT guildgate signs carries its own type, and an `id_token_hint`
//! must be an ID token — not an access token, not a back-channel logout token (RFC 8725 §3.11).

use crate::browser::{Browser, query_of};
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, OTHER, OTHER_REDIRECT, OTHER_RP, Reply, SESSION_COOKIE, TestApp, hidden_field, location,
    session_cookie, spawn_app, tokens_via,
};
use guildgate::tokens::{BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims, sign_logout_token};

/// Alice signed in to `other` in `browser`: its token response.
async fn signed_in(app: &TestApp, browser: &mut Browser) -> Reply {
    tokens_via(
        app,
        browser,
        OTHER_RP,
        &[("scope", "openid profile")],
        ALICE,
    )
    .await
}

/// A logout token as guildgate signs them for back-channel delivery, about Alice's session
/// `sid` at `other` (an RP receives these, so it could try one as a hint).
fn logout_token(app: &TestApp, sid: &str) -> String {
    let now = app.state.clock.now().unix_timestamp();
    let mut events = serde_json::Map::new();
    events.insert(BACKCHANNEL_LOGOUT_EVENT.into(), serde_json::json!({}));
    let claims = LogoutTokenClaims {
        iss: app.address.clone(),
        aud: OTHER.to_owned(),
        iat: now,
        exp: now + 120,
        jti: "logout-jti".to_owned(),
        sub: ALICE.to_owned(),
        sid: Some(sid.to_owned()),
        events,
    };
    sign_logout_token(&app.state.keys, &claims).expect("sign a logout token")
}

/// `/authorize?prompt=none&id_token_hint=…` for `other` in `browser`: the redirect's query.
async fn prompt_none_with_hint(
    app: &TestApp,
    browser: &Browser,
    hint: &str,
) -> std::collections::HashMap<String, String> {
    let url = app.authorize_url(
        OTHER,
        OTHER_REDIRECT,
        &[("prompt", "none"), ("id_token_hint", hint), ("state", "st")],
    );
    let cookie = session_cookie(app, browser).expect("a session");
    let response = app
        .http
        .get(url)
        .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("the app answers");
    query_of(&location(&response).expect("prompt=none redirects"))
}

#[tokio::test]
async fn only_an_id_token_satisfies_id_token_hint_with_prompt_none() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let tokens = signed_in(&app, &mut browser).await;
    let sid = decode_payload(&tokens.text("id_token"))["sid"]
        .as_str()
        .expect("the ID token names its session")
        .to_owned();

    // Act
    let with_id_token = prompt_none_with_hint(&app, &browser, &tokens.text("id_token")).await;
    let with_access_token =
        prompt_none_with_hint(&app, &browser, &tokens.text("access_token")).await;
    let with_logout_token = prompt_none_with_hint(&app, &browser, &logout_token(&app, &sid)).await;

    // Assert
    assert!(with_id_token.contains_key("code"), "{with_id_token:?}");
    for (what, answer) in [
        ("an access token", with_access_token),
        ("a logout token", with_logout_token),
    ] {
        assert_eq!(
            answer.get("error").map(String::as_str),
            Some("invalid_request"),
            "{what} is not an ID token: {answer:?}"
        );
        assert!(!answer.contains_key("code"), "{what}");
    }
}

#[tokio::test]
async fn an_access_token_or_a_logout_token_as_logout_hint_does_not_skip_the_confirmation() {
    // Arrange: both carry Alice's `sub` and her current session's `sid`.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let tokens = signed_in(&app, &mut browser).await;
    let sid = decode_payload(&tokens.text("access_token"))["sid"]
        .as_str()
        .expect("the access token names its session")
        .to_owned();
    let hints = [
        ("an access token", tokens.text("access_token")),
        ("a logout token", logout_token(&app, &sid)),
    ];

    for (what, hint) in hints {
        // Act
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint)
            .finish();
        let page = browser
            .get(&format!("{}/logout?{query}", app.address))
            .await;

        // Assert: the person is asked, and stays signed in meanwhile.
        assert_eq!(page.status, 200, "{what}: {}", page.body);
        assert!(
            hidden_field(&page.body, "csrf").is_some(),
            "{what}: the confirmation page, not a silent logout"
        );
        let still = prompt_none_with_hint(&app, &browser, &tokens.text("id_token")).await;
        assert!(
            still.contains_key("code"),
            "{what}: still signed in: {still:?}"
        );
    }
}
