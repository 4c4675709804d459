//! `/callback/discord`: forged, unbound and replayed callbacks are stopped before Discord is
//! called; Discord's refusals and failures reach the app as errors and leave no session.

use crate::browser::{Browser, Page, query_of};
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, TestApp, callback_url_after_discord, cookie_value, first_link,
    goes_to_discord, link_back_params, set_cookie, spawn_app, unescape_html,
};
use guildgate::discord::fake::{FakeRoute, Fault};

const BINDING: &str = "guildgate_login";
const SESSION: &str = "guildgate_session";

/// Asserts the callback was refused with a page, without asking Discord for tokens.
fn assert_refused_before_discord(app: &TestApp, page: &Page, token_calls_before: u32, why: &str) {
    assert_eq!(page.status, 400, "{why}: {}", page.body);
    assert_eq!(page.location, None, "{why}: never redirects");
    assert!(
        page.body.contains("<html") || page.body.contains("<!doctype"),
        "{why}: an HTML page"
    );
    assert_eq!(
        app.discord.calls(FakeRoute::Token),
        token_calls_before,
        "{why}: Discord's token endpoint was not called"
    );
}

/// Runs a login for `app` that Discord approves as Alice, with `fault` injected on `route`;
/// returns the page the callback answered with.
async fn login_with_fault(
    app: &TestApp,
    browser: &mut Browser,
    route: FakeRoute,
    fault: Fault,
) -> Page {
    app.discord.inject(route, fault);
    let callback = callback_url_after_discord(app, browser, "st").await;
    let page = browser.get(&callback).await;
    app.discord.clear_faults();
    page
}

/// Asserts `browser` holds no session: no cookie, and `prompt=none` is answered `login_required`.
async fn assert_no_session(app: &TestApp, browser: &mut Browser) {
    assert!(
        browser.cookie(&app.address, SESSION).is_none(),
        "no session cookie was set"
    );
    let again = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none"), ("state", "again")]))
        .await;
    let location = again.location.expect("prompt=none redirects to the app");
    assert!(location.starts_with(APP_REDIRECT), "{location}");
    assert_eq!(query_of(&location)["error"], "login_required", "{location}");
}

#[tokio::test]
async fn a_callback_with_a_forged_state_is_refused_without_calling_discord() {
    // Arrange: the browser has a real pending login (and its binding cookie).
    let app = spawn_app().await;
    let mut browser = Browser::new();
    callback_url_after_discord(&app, &mut browser, "st").await;
    let forged = format!(
        "{}/callback/discord?code=stolen-code&state=forged-state&iss=https%3A%2F%2Fdiscord.com",
        app.address
    );

    // Act
    let page = browser.get(&forged).await;

    // Assert
    assert_refused_before_discord(&app, &page, 0, "forged state");
    assert!(browser.cookie(&app.address, SESSION).is_none());
}

#[tokio::test]
async fn a_callback_without_the_binding_cookie_is_refused_without_calling_discord() {
    // Arrange: the callback URL is opened in a browser that lacks the binding cookie.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let callback = callback_url_after_discord(&app, &mut browser, "st").await;
    assert!(browser.cookie(&app.address, BINDING).is_some());
    browser.forget(&app.address, BINDING);

    // Act
    let page = browser.get(&callback).await;

    // Assert
    assert_refused_before_discord(&app, &page, 0, "missing binding cookie");
    assert!(browser.cookie(&app.address, SESSION).is_none());
}

#[tokio::test]
async fn a_replayed_callback_url_is_refused_without_calling_discord_again() {
    // Arrange: the login completes once.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let callback = callback_url_after_discord(&app, &mut browser, "st").await;
    let first = browser.get(&callback).await;
    assert!(
        first
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(APP_REDIRECT)),
        "the first callback completes: {} {}",
        first.status,
        first.body
    );
    let token_calls = app.discord.calls(FakeRoute::Token);
    assert_eq!(token_calls, 1);

    // Act
    let replay = browser.get(&callback).await;

    // Assert
    assert_refused_before_discord(&app, &replay, token_calls, "replayed callback");
}

#[tokio::test]
async fn cancelling_at_discord_sends_access_denied_with_the_state_to_the_app() {
    // Arrange: nobody is signed in at Discord, so its picker (with Cancel) is shown.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    app.discord.sign_in_as(None);
    let start = browser
        .get(&app.authorize_url(APP, APP_REDIRECT, &[("state", "keep-me")]))
        .await;
    let to_discord = start.location.expect("to Discord");
    assert!(goes_to_discord(&app, &to_discord), "{to_discord}");
    let picker = browser.get(&to_discord).await;
    assert_eq!(picker.status, 200, "the picker is shown");
    let marker = "class=\"cancel\" href=\"";
    let start = picker.body.find(marker).expect("a Cancel link") + marker.len();
    let end = start + picker.body[start..].find('"').unwrap();
    let cancel = app
        .discord
        .base_url()
        .join(&unescape_html(&picker.body[start..end]))
        .unwrap();

    // Act: the person clicks Cancel; Discord sends error=access_denied to the callback.
    let back = browser.get(cancel.as_str()).await;
    let callback = back.location.expect("Discord redirects back");
    assert_eq!(query_of(&callback)["error"], "access_denied");
    let done = browser.get(&callback).await;

    // Assert
    let location = done.location.expect("the app gets the answer");
    assert!(location.starts_with(APP_REDIRECT), "{location}");
    let params = query_of(&location);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "keep-me");
    assert_eq!(params["iss"], app.address);
    assert!(!params.contains_key("code"));
    assert_eq!(app.discord.calls(FakeRoute::Token), 0);
    assert!(browser.cookie(&app.address, SESSION).is_none());
}

#[tokio::test]
async fn discord_failing_at_the_code_exchange_shows_a_page_that_returns_an_error_to_the_app() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();

    // Act: every try at Discord's token endpoint gets a 500.
    let page = login_with_fault(
        &app,
        &mut browser,
        FakeRoute::Token,
        Fault::ServerError { times: 5 },
    )
    .await;

    // Assert
    assert!(
        matches!(page.status, 502 | 503),
        "a gateway error page, got {}: {}",
        page.status,
        page.body
    );
    assert_eq!(page.location, None, "the person sees what happened first");
    let link = link_back_params(&page.body);
    assert!(
        matches!(
            link.get("error").map(String::as_str),
            Some("server_error" | "temporarily_unavailable")
        ),
        "the link back carries the error: {link:?}"
    );
    assert_eq!(link["state"], "st");
    assert!(!link.contains_key("code"));
    assert_no_session(&app, &mut browser).await;
}

#[tokio::test]
async fn a_long_rate_limit_at_the_code_exchange_is_temporarily_unavailable() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();

    // Act: Discord asks us to wait a minute, which no person should sit through.
    let started = std::time::Instant::now();
    let page = login_with_fault(
        &app,
        &mut browser,
        FakeRoute::Token,
        Fault::RateLimited {
            retry_after: 60.0,
            times: 5,
        },
    )
    .await;

    // Assert
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the callback did not wait out the minute: {:?}",
        started.elapsed()
    );
    assert!(
        matches!(page.status, 502 | 503),
        "{}: {}",
        page.status,
        page.body
    );
    let link = link_back_params(&page.body);
    assert_eq!(
        link.get("error").map(String::as_str),
        Some("temporarily_unavailable"),
        "{link:?}"
    );
    assert_eq!(link["state"], "st");
    assert!(browser.cookie(&app.address, SESSION).is_none());
}

#[tokio::test]
async fn an_authorization_response_from_the_wrong_issuer_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();

    // Act: Discord's answer carries an `iss` that is not https://discord.com (RFC 9207).
    let page = login_with_fault(&app, &mut browser, FakeRoute::Authorize, Fault::WrongIssuer).await;

    // Assert: whether redirected or linked from a page, the app gets an error and no code.
    let to_app = page
        .location
        .clone()
        .or_else(|| first_link(&page.body))
        .unwrap_or_else(|| panic!("the app is told: {} {}", page.status, page.body));
    assert!(to_app.starts_with(APP_REDIRECT), "{to_app}");
    let params = query_of(&to_app);
    assert!(
        !params.contains_key("code"),
        "no code for the app: {to_app}"
    );
    assert!(params.contains_key("error"), "{to_app}");
    assert_eq!(params["state"], "st");
    assert_eq!(
        app.discord.calls(FakeRoute::Token),
        0,
        "the code from the wrong issuer was not exchanged"
    );
    assert_no_session(&app, &mut browser).await;
}

#[tokio::test]
async fn malformed_json_from_discord_s_user_endpoint_ends_in_an_error_and_no_session() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();

    // Act
    let page = login_with_fault(
        &app,
        &mut browser,
        FakeRoute::Me,
        Fault::MalformedJson { times: 5 },
    )
    .await;

    // Assert
    assert!(page.status >= 400, "{} {}", page.status, page.body);
    let link = link_back_params(&page.body);
    assert!(
        link.get("error").is_some_and(|e| !e.is_empty()),
        "the app gets an error: {link:?}"
    );
    assert!(!link.contains_key("code"));
    assert_no_session(&app, &mut browser).await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    // Arrange: a login up to Discord's redirect back, with the raw binding cookie kept.
    let app = spawn_app().await;
    app.discord.sign_in_as(Some(ALICE));
    let start = app
        .http
        .get(app.authorize_url(APP, APP_REDIRECT, &[]))
        .send()
        .await
        .unwrap();
    let binding = set_cookie(&start, BINDING).expect("a binding cookie");
    let to_discord = start.headers()["location"].to_str().unwrap().to_owned();
    let back = app.http.get(&to_discord).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();

    // Act
    let done = app
        .http
        .get(&callback)
        .header("cookie", format!("{BINDING}={}", cookie_value(&binding)))
        .send()
        .await
        .unwrap();

    // Assert
    let session = set_cookie(&done, SESSION).expect("the callback sets the session cookie");
    for (line, name) in [(&session, SESSION), (&binding, BINDING)] {
        let attributes: Vec<String> = line
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(
            attributes.iter().any(|a| a == "httponly"),
            "{name} is HttpOnly: {line}"
        );
        assert!(
            attributes.iter().any(|a| a == "samesite=lax"),
            "{name} is SameSite=Lax: {line}"
        );
    }
    let location = done.headers()["location"].to_str().unwrap();
    assert!(query_of(location).contains_key("code"), "{location}");
}

#[tokio::test]
async fn a_code_discord_never_issued_gets_a_400_page_that_returns_access_denied_to_the_app() {
    // Arrange: a real sign-in up to Discord's redirect back; an attacker swaps in a code of
    // their own (one this Discord never issued for this sign-in).
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let callback = callback_url_after_discord(&app, &mut browser, "st").await;
    let mut injected = url::Url::parse(&callback).expect("an absolute callback URL");
    let pairs: Vec<(String, String)> = injected
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(pairs.iter().any(|(k, _)| k == "code"), "{callback}");
    injected.query_pairs_mut().clear().extend_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), if k == "code" { "attackers-code" } else { v })),
    );

    // Act
    let page = browser.get(injected.as_str()).await;

    // Assert: Discord was asked and refused; the request is at fault, not Discord (no 502).
    assert_eq!(app.discord.calls(FakeRoute::Token), 1, "the code was tried");
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.location, None, "the person sees what happened first");
    assert!(page.body.contains("Return to the app"), "{}", page.body);
    let link = link_back_params(&page.body);
    assert_eq!(
        link.get("error").map(String::as_str),
        Some("access_denied"),
        "{link:?}"
    );
    assert_eq!(link["state"], "st");
    assert_eq!(link["iss"], app.address);
    assert!(!link.contains_key("code"));
    assert_no_session(&app, &mut browser).await;
}
