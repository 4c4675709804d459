//! The consent step: `consent = "never" | "once" | "always"`, `prompt=consent`, `prompt=none`,
//! the person's Allow and Cancel, and consent tickets bound to one session.

use crate::browser::query_of;
use crate::browser::{Browser, Page};
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, APP_RP, Rp, TestApp, authorize_page, client_toml, display_name, hidden_field, location,
    post_as_browser, redeem_as, redirect_params, spawn_app_with, tokens_via,
};

const NEVER: Rp = Rp {
    id: "quiet",
    secret: "quiet-secret-quiet-secret",
    redirect: "https://quiet.example.com/cb",
};
const ONCE: Rp = Rp {
    id: "askonce",
    secret: "askonce-secret-askonce-secret",
    redirect: "https://once.example.com/cb",
};
const ALWAYS: Rp = Rp {
    id: "strict",
    secret: "strict-secret-strict-secret",
    redirect: "https://strict.example.com/cb",
};

fn config() -> String {
    [
        client_toml(NEVER, "consent = \"never\""),
        client_toml(ONCE, "consent = \"once\""),
        client_toml(ALWAYS, "consent = \"always\""),
    ]
    .concat()
}

/// Alice asks `rp` for `scope` in `browser` (signing in at Discord if needed), with `extra`.
async fn ask(
    app: &TestApp,
    browser: &mut Browser,
    rp: Rp,
    scope: &str,
    extra: &[(&str, &str)],
) -> Page {
    let mut params = vec![("scope", scope), ("state", "st-1")];
    params.extend_from_slice(extra);
    let url = app.authorize_url(rp.id, rp.redirect, &params);
    authorize_page(app, browser, &url, ALICE).await
}

/// Whether `page` is the consent page (and then its ticket).
fn consent_ticket(page: &Page) -> Option<String> {
    (page.status == 200)
        .then(|| hidden_field(&page.body, "ticket"))
        .flatten()
}

/// Answers the consent page in `browser` (`allow` or `deny`); the response.
async fn answer(app: &TestApp, browser: &Browser, ticket: &str, choice: &str) -> reqwest::Response {
    post_as_browser(
        app,
        browser,
        "/consent",
        &[("ticket", ticket), ("answer", choice)],
    )
    .await
}

/// The code in a redirect to `rp`.
fn code_in(rp: Rp, location: &str) -> String {
    assert!(location.starts_with(rp.redirect), "{location}");
    query_of(location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

#[tokio::test]
async fn a_client_with_consent_never_gets_a_code_without_a_consent_page() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();

    // Act
    let page = ask(&app, &mut browser, NEVER, "openid profile email", &[]).await;

    // Assert
    assert!(
        consent_ticket(&page).is_none(),
        "no consent page: {}",
        page.body
    );
    let code = code_in(NEVER, page.location.as_deref().expect("a redirect"));
    assert_eq!(redeem_as(&app, NEVER, &code).await.status, 200);
}

#[tokio::test]
async fn a_client_with_consent_always_shows_the_consent_page_every_time() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let first = ask(&app, &mut browser, ALWAYS, "openid profile email", &[]).await;
    let ticket = consent_ticket(&first)
        .unwrap_or_else(|| panic!("the consent page: {} {}", first.status, first.body));
    assert!(first.body.contains(&display_name(ALWAYS)), "names the app");
    assert_eq!(
        first.body.matches("name=\"answer\"").count(),
        2,
        "Allow and Cancel"
    );
    for claim in [
        "your Discord user id",
        "your Discord username",
        "your email address",
    ] {
        assert!(first.body.contains(claim), "names the claims: {claim}");
    }
    let allowed = answer(&app, &browser, &ticket, "allow").await;
    assert_eq!(allowed.status(), 303);
    let back = location(&allowed).expect("a redirect");
    assert_eq!(query_of(&back)["state"], "st-1");
    let tokens = redeem_as(&app, ALWAYS, &code_in(ALWAYS, &back)).await;
    assert_eq!(
        tokens.status, 200,
        "the code after Allow is good: {}",
        tokens.body
    );
    assert_eq!(decode_payload(&tokens.text("id_token"))["sub"], ALICE);

    // Act: the same browser (a live session) asks again.
    let second = ask(&app, &mut browser, ALWAYS, "openid profile email", &[]).await;

    // Assert
    assert!(
        consent_ticket(&second).is_some(),
        "asked again: {} {:?}",
        second.status,
        second.location
    );
}

#[tokio::test]
async fn consent_once_asks_the_first_time_remembers_allow_and_asks_again_with_prompt_consent() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let first = ask(&app, &mut browser, ONCE, "openid email", &[]).await;
    let ticket = consent_ticket(&first).expect("asked the first time");
    assert!(first.body.contains(&display_name(ONCE)));
    assert!(first.body.contains("your email address"));
    let allowed = answer(&app, &browser, &ticket, "allow").await;
    assert_eq!(allowed.status(), 303);
    code_in(ONCE, &location(&allowed).expect("a redirect"));

    // Act
    let remembered = ask(&app, &mut browser, ONCE, "openid email", &[]).await;
    let forced = ask(
        &app,
        &mut browser,
        ONCE,
        "openid email",
        &[("prompt", "consent")],
    )
    .await;

    // Assert
    assert!(consent_ticket(&remembered).is_none(), "{}", remembered.body);
    code_in(
        ONCE,
        remembered
            .location
            .as_deref()
            .expect("straight back with a code"),
    );
    assert!(
        consent_ticket(&forced).is_some(),
        "prompt=consent asks again: {} {:?}",
        forced.status,
        forced.location
    );
}

#[tokio::test]
async fn consent_once_asks_again_when_the_app_wants_more_than_was_allowed() {
    // Arrange: Alice allowed `openid` only.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let first = ask(&app, &mut browser, ONCE, "openid", &[]).await;
    let ticket = consent_ticket(&first).expect("asked the first time");
    assert_eq!(answer(&app, &browser, &ticket, "allow").await.status(), 303);

    // Act
    let more = ask(&app, &mut browser, ONCE, "openid email", &[]).await;

    // Assert
    assert!(
        consent_ticket(&more).is_some(),
        "email was never allowed: {:?}",
        more.location
    );
    assert!(more.body.contains("your email address"));
}

#[tokio::test]
async fn denying_consent_sends_access_denied_to_the_app_and_remembers_nothing() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let page = ask(&app, &mut browser, ONCE, "openid profile", &[]).await;
    let ticket = consent_ticket(&page).expect("the consent page");

    // Act
    let denied = answer(&app, &browser, &ticket, "deny").await;

    // Assert
    assert_eq!(denied.status(), 303);
    let back = location(&denied).expect("a redirect to the app");
    assert!(back.starts_with(ONCE.redirect), "{back}");
    let params = query_of(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], app.address, "RFC 9207");
    assert!(!params.contains_key("code"));
    let again = ask(&app, &mut browser, ONCE, "openid profile", &[]).await;
    assert!(
        consent_ticket(&again).is_some(),
        "Cancel is not remembered as consent"
    );
}

#[tokio::test]
async fn prompt_none_when_consent_is_needed_is_consent_required() {
    // Arrange: a live session (from an app that never asks).
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    tokens_via(&app, &mut browser, APP_RP, &[], ALICE).await;

    for rp in [ONCE, ALWAYS] {
        // Act
        let page = ask(&app, &mut browser, rp, "openid", &[("prompt", "none")]).await;

        // Assert
        let params = redirect_params(&page);
        assert!(page.location.as_deref().unwrap().starts_with(rp.redirect));
        assert_eq!(params["error"], "consent_required", "{}", rp.id);
        assert_eq!(params["state"], "st-1");
    }
}

#[tokio::test]
async fn a_consent_ticket_is_refused_outside_the_session_it_was_issued_to() {
    // Arrange: Alice's browser shows the consent page; a second browser has its own session.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let page = ask(&app, &mut browser, ALWAYS, "openid", &[]).await;
    let ticket = consent_ticket(&page).expect("the consent page");
    let mut other_browser = Browser::new();
    tokens_via(&app, &mut other_browser, APP_RP, &[], ALICE).await;
    // One character in the middle of the signature changed.
    let at = ticket.rfind('.').expect("a JWT") + 20;
    let swapped = if &ticket[at..=at] == "x" { "y" } else { "x" };
    let tampered = format!("{}{swapped}{}", &ticket[..at], &ticket[at + 1..]);
    let cases = [
        ("another session", &other_browser, ticket.as_str()),
        ("no session", &Browser::new(), ticket.as_str()),
        ("a tampered ticket", &browser, tampered.as_str()),
    ];

    for (case, who, ticket) in cases {
        // Act
        let response = answer(&app, who, ticket, "allow").await;

        // Assert
        assert_eq!(response.status(), 400, "{case}");
        assert!(
            location(&response).is_none(),
            "{case}: no code goes anywhere"
        );
    }
    let genuine = answer(&app, &browser, &ticket, "allow").await;
    assert_eq!(
        genuine.status(),
        303,
        "the ticket still works in its own session"
    );
    code_in(ALWAYS, &location(&genuine).expect("a redirect"));
}

#[tokio::test]
async fn the_consent_page_cannot_be_framed() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    tokens_via(&app, &mut browser, APP_RP, &[], ALICE).await;
    let cookie = crate::helpers::session_cookie(&app, &browser).expect("a session");

    // Act: the consent page fetched directly, to read its headers.
    let response = app
        .http
        .get(app.authorize_url(ALWAYS.id, ALWAYS.redirect, &[("scope", "openid")]))
        .header(
            "cookie",
            format!("{}={cookie}", crate::helpers::SESSION_COOKIE),
        )
        .send()
        .await
        .expect("the app answers");

    // Assert: clickjacking the Allow button is not possible.
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    let frame_options = headers
        .get("x-frame-options")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        frame_options.eq_ignore_ascii_case("deny") || csp.contains("frame-ancestors 'none'"),
        "X-Frame-Options {frame_options:?}, CSP {csp:?}"
    );
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn a_consent_ticket_expires() {
    // Arrange: the page was left open for 11 minutes.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let page = ask(&app, &mut browser, ALWAYS, "openid", &[]).await;
    let ticket = consent_ticket(&page).expect("the consent page");
    app.state
        .clock
        .advance(std::time::Duration::from_secs(11 * 60));

    // Act
    let response = answer(&app, &browser, &ticket, "allow").await;

    // Assert
    assert_eq!(response.status(), 400);
    assert!(location(&response).is_none(), "no code for a stale page");
}

#[tokio::test]
async fn consent_once_is_remembered_for_the_person_in_a_new_session() {
    // Arrange: Alice allows in one browser.
    let app = spawn_app_with(&config()).await;
    let mut first_browser = Browser::new();
    let page = ask(&app, &mut first_browser, ONCE, "openid profile", &[]).await;
    let ticket = consent_ticket(&page).expect("asked the first time");
    assert_eq!(
        answer(&app, &first_browser, &ticket, "allow")
            .await
            .status(),
        303
    );

    // Act: later she signs in at Discord again in another browser.
    let mut second_browser = Browser::new();
    let again = ask(&app, &mut second_browser, ONCE, "openid profile", &[]).await;

    // Assert
    assert!(consent_ticket(&again).is_none(), "{}", again.body);
    code_in(
        ONCE,
        again
            .location
            .as_deref()
            .expect("straight back with a code"),
    );
}
