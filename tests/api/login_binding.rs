//! The browser binding of Discord logins and the session cookie (login CSRF): a fresh binding
//! per login, `__Host-` cookies on https, duplicate cookies ignored, and pending logins capped.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, TestApp, callback_url_after_discord, cookie_value, location,
    set_cookie, spawn_app, spawn_app_as, spawn_app_with,
};

const BINDING: &str = "guildgate_login";
const SESSION: &str = "guildgate_session";

/// GETs `url` with exactly this `Cookie` header (or none), as a browser or a script would.
async fn get(app: &TestApp, url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("the app answers")
}

/// Lets the fake Discord approve Alice for the login whose authorize redirect is `start`;
/// returns the callback URL Discord sends the browser to.
async fn approved_at_discord(app: &TestApp, start: &reqwest::Response) -> String {
    let to_discord = location(start).expect("authorize redirects to Discord");
    app.discord.sign_in_as(Some(ALICE));
    let back = get(app, &to_discord, None).await;
    location(&back).expect("Discord redirects back")
}

fn is_redirect_to_app(response: &reqwest::Response) -> bool {
    matches!(response.status().as_u16(), 302 | 303)
        && location(response).is_some_and(|l| l.starts_with(APP_REDIRECT))
}

#[tokio::test]
async fn a_binding_value_planted_in_the_browser_is_never_adopted_for_its_login() {
    // Arrange: an attacker planted a binding value they know in Alice's browser.
    let app = spawn_app().await;
    let planted = "a".repeat(43);
    let start = get(
        &app,
        &app.authorize_url(APP, APP_REDIRECT, &[]),
        Some(&format!("{BINDING}={planted}")),
    )
    .await;
    let fresh = cookie_value(&set_cookie(&start, BINDING).expect("a binding cookie is set"));
    let callback = approved_at_discord(&app, &start).await;

    // Act: the attacker, holding the planted value and the leaked callback URL, tries to finish
    // Alice's login in their own browser; then Alice's browser finishes it.
    let attacker = get(&app, &callback, Some(&format!("{BINDING}={planted}"))).await;
    let alice = get(&app, &callback, Some(&format!("{BINDING}={fresh}"))).await;

    // Assert
    assert_ne!(fresh, planted, "guildgate generates the binding itself");
    assert_eq!(
        attacker.status(),
        400,
        "the planted value does not bind the login"
    );
    assert!(
        set_cookie(&attacker, SESSION).is_none(),
        "no session for the attacker"
    );
    assert!(is_redirect_to_app(&alice), "{:?}", location(&alice));
    assert!(set_cookie(&alice, SESSION).is_some());
}

#[tokio::test]
async fn with_an_https_issuer_both_cookies_are_host_prefixed_and_unprefixed_ones_are_ignored() {
    // Arrange
    let app = spawn_app_as("https", "").await;
    let start = get(&app, &app.authorize_url(APP, APP_REDIRECT, &[]), None).await;
    let binding = set_cookie(&start, "__Host-guildgate_login").expect("a __Host- binding cookie");
    let callback = approved_at_discord(&app, &start).await;
    // The issuer says https; the test server itself listens on plain http.
    let callback = callback.replacen("https://", "http://", 1);

    // Act
    let done = get(
        &app,
        &callback,
        Some(&format!(
            "__Host-guildgate_login={}",
            cookie_value(&binding)
        )),
    )
    .await;
    let session = set_cookie(&done, "__Host-guildgate_session").expect("a __Host- session cookie");
    let prompt_none = app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none")]);
    let value = cookie_value(&session);
    let unprefixed = get(&app, &prompt_none, Some(&format!("{SESSION}={value}"))).await;
    let prefixed = get(
        &app,
        &prompt_none,
        Some(&format!("__Host-{SESSION}={value}")),
    )
    .await;

    // Assert: the attributes browsers require of __Host- cookies (RFC 6265bis §4.1.3.2).
    assert!(is_redirect_to_app(&done), "{:?}", location(&done));
    for line in [&binding, &session] {
        let attributes: Vec<String> = line
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attributes.contains(&"secure".to_owned()), "{line}");
        assert!(attributes.contains(&"path=/".to_owned()), "{line}");
        assert!(attributes.contains(&"httponly".to_owned()), "{line}");
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain")),
            "{line}"
        );
    }
    let unprefixed = query_of(&location(&unprefixed).expect("a redirect"));
    assert_eq!(
        unprefixed.get("error").map(String::as_str),
        Some("login_required"),
        "an unprefixed cookie (settable by a sibling subdomain) is not a session"
    );
    assert!(query_of(&location(&prefixed).expect("a redirect")).contains_key("code"));
}

#[tokio::test]
async fn a_callback_carrying_the_binding_cookie_twice_is_refused_even_if_one_matches() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let callback = callback_url_after_discord(&app, &mut browser, "st").await;
    let real = browser
        .cookie(&app.address, BINDING)
        .expect("binding cookie");

    // Act: the matching value comes first, a planted one second.
    let twice = get(
        &app,
        &callback,
        Some(&format!("{BINDING}={real}; {BINDING}=planted-by-a-sibling")),
    )
    .await;
    let once = get(&app, &callback, Some(&format!("{BINDING}={real}"))).await;

    // Assert
    assert_eq!(twice.status(), 400, "two cookies of one name count as none");
    assert!(
        is_redirect_to_app(&once),
        "the refused request consumed nothing"
    );
}

#[tokio::test]
async fn a_request_carrying_the_session_cookie_twice_has_no_session() {
    // Arrange: Alice is signed in.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    app.code_for(&mut browser, APP, APP_REDIRECT, &[], ALICE)
        .await;
    let session = browser
        .cookie(&app.address, SESSION)
        .expect("session cookie");
    let url = app.authorize_url(APP, APP_REDIRECT, &[("prompt", "none")]);

    // Act
    let twice = get(
        &app,
        &url,
        Some(&format!("{SESSION}={session}; {SESSION}=planted")),
    )
    .await;
    let once = get(&app, &url, Some(&format!("{SESSION}={session}"))).await;

    // Assert
    let twice = query_of(&location(&twice).expect("a redirect"));
    assert_eq!(
        twice.get("error").map(String::as_str),
        Some("login_required")
    );
    assert!(query_of(&location(&once).expect("a redirect")).contains_key("code"));
}

#[tokio::test]
async fn a_second_login_in_one_browser_replaces_the_first() {
    // Arrange: two logins started in one browser (two tabs); Discord approves the first.
    let app = spawn_app().await;
    let url = app.authorize_url(APP, APP_REDIRECT, &[]);
    let first = get(&app, &url, None).await;
    let first_binding = cookie_value(&set_cookie(&first, BINDING).expect("binding"));
    let second = get(&app, &url, Some(&format!("{BINDING}={first_binding}"))).await;
    let second_binding = cookie_value(&set_cookie(&second, BINDING).expect("binding"));
    let first_callback = approved_at_discord(&app, &first).await;

    // Act: the browser now holds the second binding only.
    let returned = get(
        &app,
        &first_callback,
        Some(&format!("{BINDING}={second_binding}")),
    )
    .await;
    let with_old_binding = get(
        &app,
        &first_callback,
        Some(&format!("{BINDING}={first_binding}")),
    )
    .await;

    // Assert: one pending login per browser; the person starts again from the app.
    assert_eq!(returned.status(), 400);
    assert_eq!(
        with_old_binding.status(),
        400,
        "the replaced login was deleted"
    );
}

#[tokio::test]
async fn pending_logins_are_capped_per_address_and_a_browser_holds_only_one() {
    // Arrange: at most two pending logins per address.
    let app = spawn_app_with("[limits]\npending_logins_per_ip = 2\n").await;
    let url = app.authorize_url(APP, APP_REDIRECT, &[]);
    let mut browser = Browser::new();
    for i in 0..3 {
        let page = browser.get(&url).await;
        assert_eq!(
            page.status, 302,
            "restart {i} replaces the browser's previous login"
        );
    }
    assert_eq!(
        Browser::new().get(&url).await.status,
        302,
        "a second browser"
    );

    // Act: a script that never keeps cookies starts one more.
    let refused = get(&app, &url, None).await;

    // Assert
    assert_eq!(refused.status(), 429);
    let retry_after = refused.headers().get("retry-after").cloned();
    let body = refused.text().await.unwrap_or_default();
    assert!(retry_after.is_some(), "Retry-After is sent");
    assert!(
        body.contains("Too many sign-ins"),
        "a readable page: {body}"
    );
}

#[tokio::test]
async fn a_callback_that_took_its_login_clears_the_binding_cookie_and_one_that_took_none_does_not()
{
    // Arrange: a login approved at Discord.
    let app = spawn_app().await;
    let url = app.authorize_url(APP, APP_REDIRECT, &[]);
    let start = get(&app, &url, None).await;
    let binding = cookie_value(&set_cookie(&start, BINDING).expect("binding"));
    let callback = approved_at_discord(&app, &start).await;
    let cookie = format!("{BINDING}={binding}");

    // Act: the browser comes back from Discord, then the same callback is replayed.
    let done = get(&app, &callback, Some(&cookie)).await;
    let replayed = get(&app, &callback, Some(&cookie)).await;

    // Assert: the spent binding is cleared with the sign-in; the replay took nothing (the
    // cookie it carried could name another tab's login), so it clears nothing.
    assert!(is_redirect_to_app(&done), "signed in: {}", done.status());
    let cleared = set_cookie(&done, BINDING).expect("the callback clears the binding cookie");
    assert!(cookie_value(&cleared).is_empty(), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(
        set_cookie(&done, SESSION).is_some(),
        "and sets the session cookie"
    );
    assert_eq!(replayed.status(), 400);
    assert!(set_cookie(&replayed, BINDING).is_none());
}
