//! `/authorize` as an app and a person see it: which requests are refused with a page, which
//! errors go back to the app, and when the SSO session answers instead of Discord.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, APP_SECRET, BOB, SPA, SPA_REDIRECT, TestApp, cookie_value,
    goes_to_discord, pkce, set_cookie, spawn_app,
};
use guildgate::discord::fake::FakeRoute;
use std::time::Duration;

/// The second registered redirect URI of `app`, which carries its own query.
const APP_SECOND: &str = "https://app.example.com/second?keep=1";

/// A plain GET without following redirects: status, `Location`, `Content-Type`, body.
async fn fetch(app: &TestApp, url: &str) -> (u16, Option<String>, String, String) {
    let response = app
        .http
        .get(url)
        .send()
        .await
        .expect("request reaches the app");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    };
    let location = header("location");
    let content_type = header("content-type").unwrap_or_default();
    let body = response.text().await.unwrap_or_default();
    (status, location, content_type, body)
}

/// Asserts an authorization answer is an error redirect to `redirect_uri` and returns its query.
fn error_redirect(
    location: Option<&str>,
    redirect_uri: &str,
) -> std::collections::HashMap<String, String> {
    let location = location.expect("the error is redirected to the app");
    assert!(
        location.starts_with(redirect_uri),
        "the error goes to the registered redirect URI: {location}"
    );
    let params = query_of(location);
    assert!(
        !params.contains_key("code"),
        "no code with an error: {location}"
    );
    params
}

/// Signs Alice in to `app` in `browser`, leaving an SSO session there.
async fn with_session(app: &TestApp, browser: &mut Browser) {
    app.code_for(browser, APP, APP_REDIRECT, &[], ALICE).await;
    assert!(
        browser.cookie(&app.address, "guildgate_session").is_some(),
        "the sign-in left a session cookie"
    );
}

#[tokio::test]
async fn an_unknown_client_id_gets_a_page_and_is_never_redirected() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url("no-such-app", APP_REDIRECT, &[("state", "st")]);

    // Act
    let (status, location, content_type, body) = fetch(&app, &url).await;

    // Assert
    assert_eq!(status, 400, "{body}");
    assert_eq!(location, None, "never redirects for an unknown client");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(app.discord.calls(FakeRoute::Authorize), 0);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_a_page_and_is_never_redirected() {
    // Arrange
    let app = spawn_app().await;
    let (challenge, _) = pkce();
    let cases: &[(&str, &str, &str)] = &[
        (
            APP,
            "https://APP.EXAMPLE.COM/oidc/callback",
            "host in another case",
        ),
        (
            APP,
            "https://app.example.com/oidc/callback/",
            "trailing slash",
        ),
        (
            APP,
            "https://app.example.com/oidc/callback?x=1",
            "added query",
        ),
        (
            APP,
            "https://app.example.com/second",
            "registered query dropped",
        ),
        (
            APP,
            "https://app.example.com@evil.example/oidc/callback",
            "userinfo trick",
        ),
        (
            APP,
            "https://app.example.com/evil/../oidc/callback",
            "dot-segment path trick",
        ),
        (
            APP,
            "http://app.example.com/oidc/callback",
            "http instead of https",
        ),
        (
            APP,
            "https://app.example.com/oidc/callback#frag",
            "fragment",
        ),
        (
            SPA,
            "http://127.0.0.1:5000@evil.example/callback",
            "loopback userinfo trick",
        ),
        (
            SPA,
            "http://127.0.0.1:5000/evil/../callback",
            "loopback dot-segment trick",
        ),
        (
            SPA,
            "http://127.0.0.1:5000/./callback",
            "loopback dot segment",
        ),
        (
            SPA,
            "HTTP://127.0.0.1:5000/callback",
            "loopback scheme in capitals",
        ),
        (
            SPA,
            "http://127.0.0.1:5000/callback/",
            "loopback trailing slash",
        ),
        (
            SPA,
            "http://127.0.0.1:5000/callback?x=1",
            "loopback added query",
        ),
        (
            SPA,
            "https://127.0.0.1:5000/callback",
            "loopback https instead of http",
        ),
        (
            SPA,
            "http://127.0.0.1:5000/callback#frag",
            "loopback fragment",
        ),
    ];

    let mut accepted = Vec::new();
    for (client, redirect_uri, why) in cases {
        // Act
        let url = app.authorize_url(
            client,
            redirect_uri,
            &[
                ("state", "st"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let (status, location, content_type, body) = fetch(&app, &url).await;

        // Assert (collected, so one run reports every case that slips through)
        let refused_with_a_page = status == 400
            && location.is_none()
            && content_type.starts_with("text/html")
            && !body.contains("evil.example");
        if !refused_with_a_page {
            accepted.push(format!(
                "{why}: {client} {redirect_uri} got {status} Location={location:?} ({content_type})"
            ));
        }
    }
    assert!(
        accepted.is_empty(),
        "unregistered redirect URIs must get a 400 HTML page and never a redirect:\n{}",
        accepted.join("\n")
    );
}

#[tokio::test]
async fn a_registered_redirect_uri_with_its_own_query_keeps_it_and_gets_the_code_added() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(APP, APP_SECOND, &[("state", "st")]);

    // Act
    let back = app.sign_in(&mut Browser::new(), &url, ALICE).await;

    // Assert
    assert!(
        back.starts_with(&format!("{APP_SECOND}&")),
        "the registered query stays first and intact: {back}"
    );
    let params = query_of(&back);
    assert_eq!(params["keep"], "1");
    assert_eq!(params["state"], "st");
    let redeemed = app.redeem(&params["code"], APP_SECOND, None).await;
    assert_eq!(
        redeemed.status(),
        200,
        "the code works with that redirect URI"
    );
}

#[tokio::test]
async fn a_request_without_the_openid_scope_gets_invalid_scope_with_state_and_iss() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(
        APP,
        APP_REDIRECT,
        &[("scope", "profile email"), ("state", "st")],
    );

    // Act
    let (status, location, _, _) = fetch(&app, &url).await;

    // Assert
    assert_eq!(status, 302);
    let params = error_redirect(location.as_deref(), APP_REDIRECT);
    assert_eq!(params["error"], "invalid_scope");
    assert_eq!(params["state"], "st");
    assert_eq!(params["iss"], app.address, "RFC 9207 iss on errors too");
}

#[tokio::test]
async fn response_type_token_gets_unsupported_response_type() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(
        APP,
        APP_REDIRECT,
        &[("response_type", "token"), ("state", "st")],
    );

    // Act
    let (_, location, _, _) = fetch(&app, &url).await;

    // Assert
    let params = error_redirect(location.as_deref(), APP_REDIRECT);
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["state"], "st");
}

#[tokio::test]
async fn a_repeated_parameter_gets_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(
        APP,
        APP_REDIRECT,
        &[("state", "st"), ("nonce", "one"), ("nonce", "two")],
    );

    // Act
    let (_, location, _, _) = fetch(&app, &url).await;

    // Assert
    let params = error_redirect(location.as_deref(), APP_REDIRECT);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st");
}

#[tokio::test]
async fn request_objects_are_refused_without_fetching_anything() {
    // Arrange: a request_uri that points at the fake Discord, so a fetch would be counted.
    let app = spawn_app().await;
    let request_uri = app.discord.authorize_url().to_string();
    let cases = [
        (
            "request",
            "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.",
            "request_not_supported",
        ),
        (
            "request_uri",
            request_uri.as_str(),
            "request_uri_not_supported",
        ),
    ];

    for (name, value, expected) in cases {
        // Act
        let url = app.authorize_url(APP, APP_REDIRECT, &[(name, value), ("state", "st")]);
        let (_, location, _, _) = fetch(&app, &url).await;

        // Assert
        let params = error_redirect(location.as_deref(), APP_REDIRECT);
        assert_eq!(
            params["error"], expected,
            "{name} is answered with {expected}"
        );
        assert_eq!(params["state"], "st", "{name}: state is echoed");
    }
    assert_eq!(
        app.discord.calls(FakeRoute::Authorize),
        0,
        "the fake Discord was not contacted"
    );
    assert_eq!(app.discord.calls(FakeRoute::Token), 0);
}

#[tokio::test]
async fn a_public_client_without_pkce_gets_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(SPA, SPA_REDIRECT, &[("state", "st")]);

    // Act
    let (_, location, _, _) = fetch(&app, &url).await;

    // Assert
    let params = error_redirect(location.as_deref(), SPA_REDIRECT);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st");
}

#[tokio::test]
async fn the_plain_code_challenge_method_is_refused() {
    // Arrange: a plain challenge is the verifier itself (RFC 7636 §4.2).
    let app = spawn_app().await;
    let (_, verifier) = pkce();
    let verifier = verifier.as_str();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("code_challenge", verifier),
                ("code_challenge_method", "plain"),
            ],
            "explicit plain",
        ),
        (
            &[("code_challenge", verifier)],
            "method omitted, which means plain",
        ),
    ];

    for (pkce_params, why) in cases {
        // Act
        let mut extra = vec![("state", "st")];
        extra.extend_from_slice(pkce_params);
        let url = app.authorize_url(APP, APP_REDIRECT, &extra);
        let (_, location, _, _) = fetch(&app, &url).await;

        // Assert
        let params = error_redirect(location.as_deref(), APP_REDIRECT);
        assert_eq!(params["error"], "invalid_request", "{why} must be refused");
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_gets_login_required() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none"), ("state", "st")]);

    // Act
    let page = Browser::new().get(&url).await;

    // Assert
    let params = error_redirect(page.location.as_deref(), APP_REDIRECT);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st");
    assert_eq!(params["iss"], app.address);
    assert_eq!(app.discord.calls(FakeRoute::Authorize), 0);
}

#[tokio::test]
async fn prompt_none_combined_with_login_gets_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let url = app.authorize_url(
        APP,
        APP_REDIRECT,
        &[("prompt", "none login"), ("state", "st")],
    );

    // Act
    let (_, location, _, _) = fetch(&app, &url).await;

    // Assert
    let params = error_redirect(location.as_deref(), APP_REDIRECT);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st");
}

#[tokio::test]
async fn prompt_login_sends_a_signed_in_person_to_discord_again() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    with_session(&app, &mut browser).await;

    // Act
    let page = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("prompt", "login")]))
        .await;

    // Assert
    assert_eq!(page.status, 302);
    let location = page.location.expect("a redirect");
    assert!(
        goes_to_discord(&app, &location),
        "to Discord, not the app: {location}"
    );
}

#[tokio::test]
async fn max_age_zero_after_time_has_passed_sends_the_person_to_discord() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    with_session(&app, &mut browser).await;
    app.state.clock.advance(Duration::from_secs(5));

    // Act
    let page = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("max_age", "0")]))
        .await;

    // Assert
    assert_eq!(page.status, 302);
    let location = page.location.expect("a redirect");
    assert!(
        goes_to_discord(&app, &location),
        "to Discord, not the app: {location}"
    );
}

#[tokio::test]
async fn a_large_max_age_reuses_the_session_without_discord() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    with_session(&app, &mut browser).await;
    app.state.clock.advance(Duration::from_secs(60));
    let discord_visits = app.discord.calls(FakeRoute::Authorize);

    // Act
    let page = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("max_age", "86400"), ("state", "st")]))
        .await;

    // Assert
    assert_eq!(page.status, 302);
    let location = page.location.expect("a redirect");
    assert!(location.starts_with(APP_REDIRECT), "{location}");
    let params = query_of(&location);
    assert!(params.contains_key("code"), "{location}");
    assert_eq!(params["state"], "st");
    assert_eq!(app.discord.calls(FakeRoute::Authorize), discord_visits);
}

#[tokio::test]
async fn an_id_token_hint_for_someone_else_with_prompt_none_gets_login_required() {
    // Arrange: Bob's ID token, and a browser where Alice is signed in.
    let app = spawn_app().await;
    let bob_code = app
        .code_for(&mut Browser::new(), APP, APP_REDIRECT, &[], BOB)
        .await;
    let bob: serde_json::Value = app
        .redeem(&bob_code, APP_REDIRECT, None)
        .await
        .json()
        .await
        .unwrap();
    let bob_id_token = bob["id_token"].as_str().expect("an ID token").to_owned();
    let mut browser = Browser::new();
    with_session(&app, &mut browser).await;

    // Act
    let page = browser
        .get(&app.authorize_url(
            APP,
            APP_REDIRECT,
            &[
                ("prompt", "none"),
                ("id_token_hint", &bob_id_token),
                ("state", "st"),
            ],
        ))
        .await;

    // Assert
    let params = error_redirect(page.location.as_deref(), APP_REDIRECT);
    assert_eq!(
        params["error"], "login_required",
        "Alice's session is not Bob's"
    );
    assert_eq!(params["state"], "st");
}

#[tokio::test]
async fn a_public_client_may_use_any_loopback_port() {
    // Arrange: RFC 8252 §7.3, the registered URI has no port; native apps pick one.
    let app = spawn_app().await;
    let redirect = "http://127.0.0.1:51234/callback";
    let (challenge, verifier) = pkce();
    let url = app.authorize_url(
        SPA,
        redirect,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ],
    );

    // Act
    let back = app.sign_in(&mut Browser::new(), &url, ALICE).await;

    // Assert
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let params = query_of(&back);
    let redeemed = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", redirect),
                ("client_id", SPA),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        redeemed.status(),
        200,
        "the code works with the port it was sent to"
    );
}

#[tokio::test]
async fn authorize_accepts_a_post_with_a_form_body() {
    // Arrange
    let app = spawn_app().await;
    app.discord.sign_in_as(Some(ALICE));

    // Act: the form is posted; the browser follows to Discord and back with its binding cookie.
    let posted = app
        .http
        .post(format!("{}/authorize", app.address))
        .form(&[
            ("client_id", APP),
            ("redirect_uri", APP_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "posted"),
        ])
        .send()
        .await
        .unwrap();
    let status = posted.status().as_u16();
    let binding = set_cookie(&posted, "guildgate_login").expect("a binding cookie");
    let to_discord = posted.headers()["location"].to_str().unwrap().to_owned();
    let back = app.http.get(&to_discord).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = app
        .http
        .get(&callback)
        .header(
            "cookie",
            format!("guildgate_login={}", cookie_value(&binding)),
        )
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, 303, "a POST is answered with See Other");
    assert!(goes_to_discord(&app, &to_discord), "{to_discord}");
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(APP_REDIRECT), "{location}");
    let params = query_of(&location);
    assert!(params.contains_key("code"), "{location}");
    assert_eq!(params["state"], "posted");
}

#[tokio::test]
async fn unknown_scopes_are_ignored() {
    // Arrange
    let app = spawn_app().await;
    let code = app
        .code_for(
            &mut Browser::new(),
            APP,
            APP_REDIRECT,
            &[("scope", "openid bogus")],
            ALICE,
        )
        .await;

    // Act
    let response = app
        .token(
            Some((APP, APP_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
            ],
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "openid", "bogus is dropped");
}

#[tokio::test]
async fn a_session_unused_for_longer_than_the_idle_timeout_is_not_used_again() {
    // Arrange: signed in, then the session is used once an hour, then left alone.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    app.code_for(&mut browser, APP, APP_REDIRECT, &[], ALICE)
        .await;
    let silent = app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none")]);
    for _ in 0..3 {
        app.state
            .clock
            .advance(std::time::Duration::from_secs(3600));
        let used = browser.get(&silent).await;
        assert!(
            query_of(&used.location.unwrap()).contains_key("code"),
            "each use within the 2h idle timeout keeps the session alive"
        );
    }

    // Act: more than the idle timeout passes without use.
    app.state
        .clock
        .advance(std::time::Duration::from_secs(2 * 3600 + 60));
    let after = browser.get(&silent).await;

    // Assert
    assert_eq!(
        query_of(&after.location.unwrap())["error"],
        "login_required"
    );
}
