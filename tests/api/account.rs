//! `/account`: the person's own page (who, apps, sessions), its sign-in through Discord, and
//! its three POST actions with their CSRF and origin checks.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, BOB, Reply, Rp, SESSION_COOKIE, TestApp, authorize_page, client_id, client_toml,
    discord_id, eventually, hidden_field, post_as_browser, redeem_as, redirect_params, refresh_as,
    session_cookie, spawn_app_with, unescape_html, userinfo_status,
};
use crate::logout::{receiver, verified_logout_claims};

/// An app that asks for consent once, may refresh, and has a back-channel logout receiver.
const WIKI: Rp = Rp {
    id: "wiki",
    secret: "wiki-secret-wiki-secret-wiki",
    redirect: "https://wiki.example.com/cb",
};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn config(backchannel: Option<&str>) -> String {
    let bc = backchannel
        .map(|uri| format!("backchannel_logout_uri = \"{uri}\""))
        .unwrap_or_default();
    client_toml(
        WIKI,
        &format!("consent = \"once\"\nrefresh_tokens = true\n{bc}"),
    )
}

/// Signs `user` in to the wiki in `browser` (allowing on the consent page when asked) and
/// redeems the code.
async fn wiki_tokens(app: &TestApp, browser: &mut Browser, user: &str) -> Reply {
    let url = app.authorize_url(WIKI.id, WIKI.redirect, &[("scope", "openid profile")]);
    let page = authorize_page(app, browser, &url, user).await;
    let page = match hidden_field(&page.body, "ticket") {
        Some(ticket) => {
            let allowed = post_as_browser(
                app,
                browser,
                "/consent",
                &[("ticket", &ticket), ("answer", "allow")],
            )
            .await;
            crate::browser::Page {
                status: allowed.status().as_u16(),
                location: crate::helpers::location(&allowed),
                body: String::new(),
            }
        }
        None => page,
    };
    let code = redirect_params(&page)
        .get("code")
        .cloned()
        .expect("a code for the wiki");
    let reply = redeem_as(app, WIKI, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
}

/// The account page as `browser` sees it (status, body).
async fn account_page(app: &TestApp, browser: &mut Browser) -> (u16, String) {
    let page = browser.get(&format!("{}/account", app.address)).await;
    (page.status, page.body)
}

/// The CSRF token on the account page.
async fn csrf_of(app: &TestApp, browser: &mut Browser) -> String {
    let (_, body) = account_page(app, browser).await;
    hidden_field(&body, "csrf").unwrap_or_else(|| panic!("the account page has a form: {body}"))
}

/// Live session ids of a person.
async fn sessions_of(app: &TestApp, user: &str) -> Vec<String> {
    let now = app.state.clock.now();
    app.state
        .store
        .list_sessions(Some(&discord_id(user)), now)
        .await
        .expect("sessions")
        .into_iter()
        .map(|s| s.id.to_string())
        .collect()
}

#[tokio::test]
async fn the_account_page_shows_who_i_am_the_apps_i_used_and_my_sessions() {
    // Arrange
    let app = spawn_app_with(&config(None)).await;
    let mut browser = Browser::with_user_agent(FIREFOX);
    wiki_tokens(&app, &mut browser, ALICE).await;

    // Act
    let response = app
        .http
        .get(format!("{}/account", app.address))
        .header(
            "cookie",
            format!(
                "{SESSION_COOKIE}={}",
                session_cookie(&app, &browser).expect("a session")
            ),
        )
        .send()
        .await
        .expect("the account page");

    // Assert
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    let body = unescape_html(&response.text().await.expect("body"));
    for shown in [
        "Alice",
        "@alice",
        ALICE,
        "https://cdn.discordapp.com/avatars/318172463195504640/",
        "The wiki app",
        "preferred_username",
        "you gave consent",
        "Firefox on Linux",
        "(this browser)",
        "127.0.0.1",
        "Sign out everywhere",
    ] {
        assert!(body.contains(shown), "the page shows {shown:?}: {body}");
    }
    assert!(!body.contains("<script"), "no scripts on the page");
}

#[tokio::test]
async fn without_a_session_the_account_page_signs_in_through_discord_and_comes_back() {
    // Arrange
    let app = spawn_app_with(&config(None)).await;
    let mut browser = Browser::new();

    // Act
    let (status, body) = account_page(&app, &mut browser).await;
    let sign_in = browser
        .get(&format!("{}/account/sign-in", app.address))
        .await;
    let discord = sign_in.location.expect("to Discord");
    app.discord.sign_in_as(Some(BOB));
    let back = browser.get(&discord).await;
    let done = browser.get(&back.location.expect("the callback")).await;
    let (after, signed_in) = account_page(&app, &mut browser).await;

    // Assert
    assert_eq!(status, 200);
    assert!(unescape_html(&body).contains("/account/sign-in"), "{body}");
    assert!(
        discord.starts_with(app.discord.authorize_url().as_str()),
        "{discord}"
    );
    assert_eq!(query_of(&discord)["prompt"], "none");
    assert!(matches!(done.status, 302 | 303), "{}", done.body);
    assert_eq!(done.location, Some(format!("{}/account", app.address)));
    assert_eq!(after, 200);
    assert!(signed_in.contains("Bob (staff)"), "{signed_in}");
    assert!(
        signed_in.contains("No app holds a sign-in of yours"),
        "{signed_in}"
    );
}

#[tokio::test]
async fn revoking_an_app_ends_its_tokens_withdraws_consent_and_tells_it_by_back_channel() {
    // Arrange
    let (bc, seen) = receiver(0).await;
    let app = spawn_app_with(&config(Some(&bc))).await;
    let mut browser = Browser::new();
    let tokens = wiki_tokens(&app, &mut browser, ALICE).await;
    let csrf = csrf_of(&app, &mut browser).await;

    // Act
    let revoked = post_as_browser(
        &app,
        &browser,
        "/account/revoke",
        &[("csrf", &csrf), ("client_id", WIKI.id)],
    )
    .await;

    // Assert
    assert_eq!(revoked.status(), 303, "back to the account page");
    assert_eq!(
        userinfo_status(&app, &tokens.text("access_token")).await,
        401,
        "the access token stops working"
    );
    let refresh = refresh_as(&app, WIKI, &tokens.text("refresh_token"), None).await;
    assert_eq!(refresh.error(), "invalid_grant", "the refresh token too");
    let consent = app
        .state
        .store
        .get_consent(&discord_id(ALICE), &client_id(WIKI.id))
        .await
        .expect("consent read");
    assert_eq!(consent, None, "the consent is withdrawn");
    assert!(
        eventually(5, || !seen.lock().unwrap().is_empty()).await,
        "the wiki is told within 5 s"
    );
    let token = seen.lock().unwrap()[0].clone();
    let claims = verified_logout_claims(&app, &token, WIKI.id).await;
    assert_eq!(claims["sub"], ALICE);
    assert!(
        claims.get("sid").is_none(),
        "every session of the person at the app (§2.4): {claims}"
    );
    let (_, body) = account_page(&app, &mut browser).await;
    assert!(!body.contains("The wiki app"), "no longer listed: {body}");
    assert_eq!(sessions_of(&app, ALICE).await.len(), 1, "still signed in");
}

#[tokio::test]
async fn an_action_without_the_sessions_csrf_token_or_from_another_origin_changes_nothing() {
    // Arrange
    let app = spawn_app_with(&config(None)).await;
    let mut browser = Browser::new();
    let tokens = wiki_tokens(&app, &mut browser, ALICE).await;
    let csrf = csrf_of(&app, &mut browser).await;
    let cookie = format!(
        "{SESSION_COOKIE}={}",
        session_cookie(&app, &browser).expect("a session")
    );
    let post = |form: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut request = app
            .http
            .post(format!("{}/account/revoke", app.address))
            .header("cookie", cookie.clone())
            .form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    // Act
    let cases = [
        (vec![("client_id", WIKI.id.to_owned())], None, "no token"),
        (
            vec![
                ("csrf", "forged".to_owned()),
                ("client_id", WIKI.id.to_owned()),
            ],
            None,
            "a wrong token",
        ),
        (
            vec![("csrf", csrf.clone()), ("client_id", WIKI.id.to_owned())],
            Some("https://evil.example"),
            "another origin",
        ),
    ];
    for (form, origin, why) in cases {
        let response = post(form, origin).await.expect("the app answers");
        // Assert
        assert_eq!(response.status(), 403, "{why}");
    }
    assert_eq!(
        userinfo_status(&app, &tokens.text("access_token")).await,
        200,
        "nothing was revoked"
    );
    let same_origin = post(
        vec![("csrf", csrf), ("client_id", WIKI.id.to_owned())],
        Some("http://127.0.0.1"),
    )
    .await
    .expect("the app answers");
    assert_eq!(
        same_origin.status(),
        403,
        "an origin must match the issuer's exactly (port included)"
    );
}

#[tokio::test]
async fn another_persons_session_cannot_be_signed_out() {
    // Arrange
    let app = spawn_app_with(&config(None)).await;
    let mut alice = Browser::new();
    let mut bob = Browser::new();
    wiki_tokens(&app, &mut alice, ALICE).await;
    wiki_tokens(&app, &mut bob, BOB).await;
    let bobs = sessions_of(&app, BOB).await;
    let csrf = csrf_of(&app, &mut alice).await;

    // Act
    let response = post_as_browser(
        &app,
        &alice,
        "/account/end-session",
        &[("csrf", &csrf), ("session", &bobs[0])],
    )
    .await;

    // Assert
    assert_eq!(response.status(), 404);
    assert_eq!(sessions_of(&app, BOB).await, bobs, "Bob is still signed in");
    assert_eq!(sessions_of(&app, ALICE).await.len(), 1);
}

#[tokio::test]
async fn signing_out_one_session_leaves_the_others_and_sign_out_everywhere_ends_all() {
    // Arrange: Alice on a laptop and a phone.
    let app = spawn_app_with(&config(None)).await;
    let mut laptop = Browser::new();
    let mut phone = Browser::new();
    let laptop_tokens = wiki_tokens(&app, &mut laptop, ALICE).await;
    let phone_tokens = wiki_tokens(&app, &mut phone, ALICE).await;
    let before = sessions_of(&app, ALICE).await;
    assert_eq!(before.len(), 2);
    let csrf = csrf_of(&app, &mut laptop).await;
    let laptop_secret = session_cookie(&app, &laptop).expect("a session");
    let laptop_sid = app
        .state
        .store
        .find_session(
            &guildgate::domain::OpaqueToken::from_presented(&laptop_secret).hash(),
            app.state.clock.now(),
        )
        .await
        .expect("read")
        .expect("the laptop's session")
        .id
        .to_string();
    let phone_sid = before
        .iter()
        .find(|sid| **sid != laptop_sid)
        .cloned()
        .expect("the phone's session");

    // Act 1: sign the phone out from the laptop.
    let one = post_as_browser(
        &app,
        &laptop,
        "/account/end-session",
        &[("csrf", &csrf), ("session", &phone_sid)],
    )
    .await;

    // Assert 1
    assert_eq!(one.status(), 303);
    assert_eq!(sessions_of(&app, ALICE).await, vec![laptop_sid.clone()]);
    assert_eq!(
        userinfo_status(&app, &phone_tokens.text("access_token")).await,
        401,
        "the phone's sign-in at the wiki ended with its session"
    );
    assert_eq!(
        userinfo_status(&app, &laptop_tokens.text("access_token")).await,
        200
    );

    // Act 2
    let all = post_as_browser(
        &app,
        &laptop,
        "/account/sign-out-everywhere",
        &[("csrf", &csrf)],
    )
    .await;

    // Assert 2
    assert_eq!(all.status(), 200, "the signed-out page");
    let cleared = all
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) || c.contains("Max-Age=0"));
    assert!(cleared, "the session cookie is cleared");
    let body = unescape_html(&all.text().await.expect("body"));
    assert!(
        body.contains("signed out") && body.contains("/account"),
        "{body}"
    );
    assert!(sessions_of(&app, ALICE).await.is_empty());
    assert_eq!(
        userinfo_status(&app, &laptop_tokens.text("access_token")).await,
        401
    );
}
