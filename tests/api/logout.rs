//! `GET`/`POST /logout` (OIDC RP-Initiated Logout 1.0) and back-channel logout delivery
//! (OIDC Back-Channel Logout 1.0): hints, registered return addresses, the confirmation form
//! and its CSRF token, and logout tokens as a receiving app checks them.

use crate::browser::{Browser, query_of};
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, BOB, OFFLINE_RP, OTHER, OTHER_REDIRECT, OTHER_RP, Reply, Rp, SESSION_COOKIE, TestApp,
    client_toml, eventually, hidden_field, location, offline_client_toml, offline_tokens_via,
    post_as_browser, redirect_params, refresh_as, session_cookie, spawn_app_with, tokens_via,
    userinfo_status,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An app with a registered post-logout redirect URI that may refresh.
const RP: Rp = Rp {
    id: "rp",
    secret: "rp-secret-rp-secret-rp-secret",
    redirect: "https://rp.example.com/cb",
};
/// Its registered post-logout redirect URI.
const BYE: &str = "https://rp.example.com/bye";

/// An ID token that expires before the access token, so a test can let the hint expire while
/// the access token would still work had logout not revoked it. `[tokens]` comes first: the
/// test clients' `[[clients]]` tables precede this text.
fn config() -> String {
    format!(
        "[tokens]\nid_token_ttl = \"2m\"\n{}{}",
        client_toml(
            RP,
            &format!("refresh_tokens = true\npost_logout_redirect_uris = [\"{BYE}\"]")
        ),
        client_toml(RP2, &format!("post_logout_redirect_uris = [\"{BYE2}\"]"))
    )
}

/// A second app with its own post-logout redirect URI.
const RP2: Rp = Rp {
    id: "rp2",
    secret: "rp2-secret-rp2-secret-rp2",
    redirect: "https://rp2.example.com/cb",
};
/// Its registered post-logout redirect URI.
const BYE2: &str = "https://rp2.example.com/bye";

/// `/logout?…` with the given parameters.
fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{}/logout?{query}", app.address)
}

/// Whether the session behind `cookie` still signs the person in to `other` without a prompt.
async fn session_alive(app: &TestApp, cookie: &str) -> bool {
    let response = app
        .http
        .get(app.authorize_url(OTHER, OTHER_REDIRECT, &[("prompt", "none")]))
        .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("the app answers");
    let location = location(&response).expect("prompt=none always redirects");
    let params = query_of(&location);
    match params.get("error").map(String::as_str) {
        None => params.contains_key("code"),
        Some("login_required") => false,
        Some(other) => panic!("unexpected prompt=none answer {other}: {location}"),
    }
}

/// Alice signs in to `rp` in `browser`; the token response and the session cookie.
async fn signed_in_to(app: &TestApp, browser: &mut Browser, rp: Rp) -> (Reply, String) {
    let tokens = tokens_via(app, browser, rp, &[("scope", "openid profile")], ALICE).await;
    let cookie = session_cookie(app, browser).expect("a session cookie");
    (tokens, cookie)
}

#[tokio::test]
async fn logout_with_an_expired_id_token_hint_returns_to_the_registered_uri_and_ends_the_session() {
    // Arrange: signed in; the ID token has expired, the access token has not.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, cookie) = signed_in_to(&app, &mut browser, RP).await;
    app.state.clock.advance(Duration::from_secs(3 * 60));
    let access = tokens.text("access_token");
    assert_eq!(
        userinfo_status(&app, &access).await,
        200,
        "still valid before logout"
    );

    // Act
    let page = browser
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", &tokens.text("id_token")),
                ("post_logout_redirect_uri", BYE),
                ("state", "bye-123"),
            ],
        ))
        .await;

    // Assert
    assert_eq!(page.status, 303, "{}", page.body);
    let back = page.location.clone().expect("a redirect");
    assert!(back.starts_with(BYE), "{back}");
    assert_eq!(query_of(&back)["state"], "bye-123", "state is echoed");
    assert!(
        session_cookie(&app, &browser).is_none(),
        "the session cookie is cleared"
    );
    let again = browser
        .get(&app.authorize_url(RP.id, RP.redirect, &[("prompt", "none"), ("state", "s")]))
        .await;
    assert_eq!(redirect_params(&again)["error"], "login_required");
    assert!(
        !session_alive(&app, &cookie).await,
        "the session is ended at the server, not only forgotten by the browser"
    );
    assert_eq!(
        userinfo_status(&app, &access).await,
        401,
        "its tokens are revoked"
    );
    let refreshed = refresh_as(&app, RP, &tokens.text("refresh_token"), None).await;
    assert_eq!(
        (refreshed.status, refreshed.error()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn logout_with_an_unregistered_post_logout_redirect_uri_shows_the_signed_out_page() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, cookie) = signed_in_to(&app, &mut browser, RP).await;
    let evil = "https://evil.example/steal";

    // Act
    let response = app
        .http
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &tokens.text("id_token")),
                ("post_logout_redirect_uri", evil),
                ("state", "s"),
            ],
        ))
        .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("the app answers");

    // Assert
    assert_eq!(response.status(), 200);
    assert!(location(&response).is_none(), "no redirect at all");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.contains("signed out"), "{body}");
    assert!(
        !body.contains("evil.example"),
        "the address is not offered as a link"
    );
    assert!(
        !session_alive(&app, &cookie).await,
        "the hint still ends the session"
    );
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation_and_keeps_the_session() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, cookie) = signed_in_to(&app, &mut browser, RP).await;

    // Act
    let page = browser
        .get(&logout_url(
            &app,
            &[("client_id", RP.id), ("post_logout_redirect_uri", BYE)],
        ))
        .await;

    // Assert
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.location.is_none());
    assert!(
        page.body.contains("<form"),
        "a confirmation form: {}",
        page.body
    );
    assert!(page.body.contains("Sign out"), "{}", page.body);
    assert!(hidden_field(&page.body, "csrf").is_some_and(|c| !c.is_empty()));
    assert!(
        session_alive(&app, &cookie).await,
        "nothing ends before the person confirms"
    );
    assert_eq!(session_cookie(&app, &browser), Some(cookie));
    assert_eq!(
        userinfo_status(&app, &tokens.text("access_token")).await,
        200
    );
}

#[tokio::test]
async fn confirming_the_logout_form_with_its_csrf_token_ends_the_session() {
    // Arrange: the confirmation page, with the request's parameters carried in the form.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, cookie) = signed_in_to(&app, &mut browser, RP).await;
    let page = browser
        .get(&logout_url(
            &app,
            &[
                ("client_id", RP.id),
                ("post_logout_redirect_uri", BYE),
                ("state", "st-9"),
            ],
        ))
        .await;
    let csrf = hidden_field(&page.body, "csrf").expect("a csrf field");
    let carried: Vec<(&str, String)> = ["client_id", "post_logout_redirect_uri", "state"]
        .into_iter()
        .map(|name| {
            let value = hidden_field(&page.body, name)
                .unwrap_or_else(|| panic!("the form carries {name}: {}", page.body));
            (name, value)
        })
        .collect();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("confirm", "yes")];
    form.extend(carried.iter().map(|(k, v)| (*k, v.as_str())));

    // Act
    let response = post_as_browser(&app, &browser, "/logout", &form).await;

    // Assert
    assert_eq!(response.status(), 303);
    let back = location(&response).expect("a redirect");
    assert!(back.starts_with(BYE), "{back}");
    assert_eq!(query_of(&back)["state"], "st-9");
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|line| {
            line.starts_with(&format!("{SESSION_COOKIE}="))
                && line.to_ascii_lowercase().contains("max-age=0")
        });
    assert!(cleared, "the session cookie is cleared");
    assert!(!session_alive(&app, &cookie).await, "the session has ended");
    assert_eq!(
        userinfo_status(&app, &tokens.text("access_token")).await,
        401
    );
}

#[tokio::test]
async fn a_logout_post_without_the_right_csrf_token_does_not_end_the_session() {
    // Arrange: a second browser's session gives a genuine token for the wrong session.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (_, cookie) = signed_in_to(&app, &mut browser, RP).await;
    let mut other_browser = Browser::new();
    signed_in_to(&app, &mut other_browser, OTHER_RP).await;
    let other_page = other_browser
        .get(&logout_url(&app, &[("client_id", OTHER)]))
        .await;
    let other_csrf = hidden_field(&other_page.body, "csrf").expect("a csrf field");
    let cases = [
        ("a wrong token", "wrong"),
        ("an empty token", ""),
        ("another session's token", other_csrf.as_str()),
    ];

    for (case, csrf) in cases {
        // Act
        let response = post_as_browser(
            &app,
            &browser,
            "/logout",
            &[("csrf", csrf), ("confirm", "yes"), ("client_id", RP.id)],
        )
        .await;

        // Assert
        assert_ne!(response.status(), 303, "{case}");
        assert!(location(&response).is_none(), "{case}: no redirect");
        assert!(
            session_alive(&app, &cookie).await,
            "{case}: the session lives on"
        );
    }
}

#[tokio::test]
async fn logout_without_a_session_still_returns_to_the_registered_uri() {
    // Arrange: the person already signed out elsewhere; the app still holds an ID token.
    let app = spawn_app_with(&config()).await;
    let (tokens, _) = signed_in_to(&app, &mut Browser::new(), RP).await;

    // Act: a browser without the session cookie.
    let page = Browser::new()
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", &tokens.text("id_token")),
                ("post_logout_redirect_uri", BYE),
                ("state", "s1"),
            ],
        ))
        .await;

    // Assert
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(redirect_params(&page)["state"], "s1");
}

#[tokio::test]
async fn logout_by_form_post_with_an_id_token_hint_returns_to_the_registered_uri() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, cookie) = signed_in_to(&app, &mut browser, RP).await;
    let id_token = tokens.text("id_token");

    // Act: RP-Initiated Logout §2 allows POST as well as GET.
    let response = post_as_browser(
        &app,
        &browser,
        "/logout",
        &[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", BYE),
            ("state", "p1"),
        ],
    )
    .await;

    // Assert
    assert_eq!(response.status(), 303);
    let back = location(&response).expect("a redirect");
    assert!(back.starts_with(BYE), "{back}");
    assert_eq!(query_of(&back)["state"], "p1");
    assert!(!session_alive(&app, &cookie).await);
}

#[tokio::test]
async fn an_id_token_hint_that_does_not_identify_the_signed_in_person_asks_first() {
    // Arrange: Alice is signed in; Bob's ID token and a tampered one of hers are at hand.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (alice, cookie) = signed_in_to(&app, &mut browser, RP).await;
    let bob = tokens_via(&app, &mut Browser::new(), RP, &[], BOB).await;
    let alice_id = alice.text("id_token");
    let at = alice_id.rfind('.').expect("a JWT") + 20;
    let swapped = if &alice_id[at..=at] == "x" { "y" } else { "x" };
    let tampered = format!("{}{swapped}{}", &alice_id[..at], &alice_id[at + 1..]);
    let cases = [
        ("another person's ID token", bob.text("id_token")),
        ("a tampered ID token", tampered),
    ];

    for (case, hint) in cases {
        // Act
        let page = browser
            .get(&logout_url(
                &app,
                &[
                    ("id_token_hint", hint.as_str()),
                    ("post_logout_redirect_uri", BYE),
                ],
            ))
            .await;

        // Assert
        assert_eq!(page.status, 200, "{case}: the confirmation page");
        assert!(page.location.is_none(), "{case}");
        assert!(
            hidden_field(&page.body, "csrf").is_some(),
            "{case}: {}",
            page.body
        );
        assert!(
            session_alive(&app, &cookie).await,
            "{case}: the session lives on"
        );
    }
}

#[tokio::test]
async fn an_id_token_hint_from_an_earlier_session_asks_before_ending_the_current_one() {
    // Arrange: Alice's first session ended; she signed in again in the same browser.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (old, _) = signed_in_to(&app, &mut browser, RP).await;
    let ended = browser
        .get(&logout_url(
            &app,
            &[("id_token_hint", &old.text("id_token"))],
        ))
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let (current, cookie) = signed_in_to(&app, &mut browser, RP).await;
    assert_ne!(
        decode_payload(&old.text("id_token"))["sid"],
        decode_payload(&current.text("id_token"))["sid"],
        "a new session"
    );

    // Act: a page replays the old ID token at the logout endpoint.
    let page = browser
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", &old.text("id_token")),
                ("post_logout_redirect_uri", BYE),
            ],
        ))
        .await;

    // Assert: RP-Initiated Logout §2: the OP MUST ask when the ID token does not belong to
    // the current OP session with the RP.
    assert_eq!(
        page.status, 200,
        "the confirmation page, not a silent logout: {:?}",
        page.location
    );
    assert!(hidden_field(&page.body, "csrf").is_some(), "{}", page.body);
    assert!(
        session_alive(&app, &cookie).await,
        "the current session lives on"
    );
}

#[tokio::test]
async fn an_offline_access_id_token_from_an_earlier_session_asks_before_ending_the_current_one() {
    // Arrange: an ID token issued with offline_access (its grant is not bound to the session,
    // so it carries no sid); that session ended and Alice signed in again.
    let app = spawn_app_with(&format!("{}{}", config(), offline_client_toml(""))).await;
    let mut browser = Browser::new();
    let old = offline_tokens_via(&app, &mut browser, OFFLINE_RP, ALICE).await;
    let old_hint = old.text("id_token");
    let ended = browser
        .get(&logout_url(&app, &[("id_token_hint", &old_hint)]))
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    app.state.clock.advance(Duration::from_secs(5));
    let (_, cookie) = signed_in_to(&app, &mut browser, RP).await;

    // Act: a page replays the old ID token at the logout endpoint.
    let page = browser
        .get(&logout_url(&app, &[("id_token_hint", &old_hint)]))
        .await;

    // Assert: as above, the hint does not belong to the current session.
    assert!(
        hidden_field(&page.body, "csrf").is_some(),
        "the confirmation page, not a silent logout: {} {}",
        page.status,
        page.body
    );
    assert!(
        session_alive(&app, &cookie).await,
        "the current session lives on"
    );
}

#[tokio::test]
async fn a_client_id_that_contradicts_the_hint_cannot_choose_the_return_address() {
    // Arrange: Alice's ID token is from `rp`; the request names `rp2` and rp2's address.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let (tokens, _) = signed_in_to(&app, &mut browser, RP).await;

    // Act
    let page = browser
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", &tokens.text("id_token")),
                ("client_id", RP2.id),
                ("post_logout_redirect_uri", BYE2),
            ],
        ))
        .await;

    // Assert
    assert!(
        page.location
            .as_deref()
            .is_none_or(|l| !l.starts_with(BYE2)),
        "not sent to an address the hint's app did not register: {:?}",
        page.location
    );
}

#[tokio::test]
async fn an_offline_access_grant_outlives_logout_but_a_session_grant_does_not() {
    // Arrange: `rp` holds a session-bound grant; `offline` was granted offline_access.
    let app = spawn_app_with(&format!("{}{}", config(), offline_client_toml(""))).await;
    let mut browser = Browser::new();
    let (session_bound, _) = signed_in_to(&app, &mut browser, RP).await;
    let offline = offline_tokens_via(&app, &mut browser, OFFLINE_RP, ALICE).await;

    // Act
    browser
        .get(&logout_url(
            &app,
            &[("id_token_hint", &session_bound.text("id_token"))],
        ))
        .await;

    // Assert
    let bound = refresh_as(&app, RP, &session_bound.text("refresh_token"), None).await;
    assert_eq!((bound.status, bound.error()), (400, "invalid_grant"));
    let kept = refresh_as(&app, OFFLINE_RP, &offline.text("refresh_token"), None).await;
    assert_eq!(
        kept.status, 200,
        "offline_access outlives the sign-in session (OIDC Core §11): {}",
        kept.body
    );
}

/// A back-channel logout receiver on 127.0.0.1: records every POSTed `logout_token` and
/// answers 500 to the first `fail_first` of them.
pub async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorded = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let url = format!(
        "http://127.0.0.1:{}/bc",
        listener.local_addr().expect("local addr").port()
    );
    let server = actix_web::HttpServer::new(move || {
        let recorded = recorded.clone();
        actix_web::App::new().route(
            "/bc",
            actix_web::web::post().to(move |body: actix_web::web::Bytes| {
                let recorded = recorded.clone();
                async move {
                    let token = url::form_urlencoded::parse(&body)
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let mut seen = recorded.lock().expect("receiver lock");
                    seen.push(token);
                    if seen.len() <= fail_first {
                        actix_web::HttpResponse::InternalServerError().finish()
                    } else {
                        actix_web::HttpResponse::Ok().finish()
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("receiver listens")
    .run();
    tokio::spawn(server);
    (url, seen)
}

/// A client whose back-channel logout URI is `uri`.
fn bc_client(rp: Rp, uri: &str) -> String {
    client_toml(rp, &format!("backchannel_logout_uri = \"{uri}\""))
}

const BC_APP: Rp = Rp {
    id: "bcapp",
    secret: "bcapp-secret-bcapp-secret",
    redirect: "https://bc.example.com/cb",
};
const BC_IDLE: Rp = Rp {
    id: "bcidle",
    secret: "bcidle-secret-bcidle-secret",
    redirect: "https://idle.example.com/cb",
};

/// Verifies a logout token the way a receiving app does: signature against `/jwks.json`,
/// `iss` and `aud`; returns its claims.
pub async fn verified_logout_claims(
    app: &TestApp,
    token: &str,
    audience: &str,
) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/jwks.json")
        .await
        .json()
        .await
        .expect("a JWKS document");
    let header = jsonwebtoken::decode_header(token).expect("a JWT");
    assert_eq!(
        header.typ.as_deref(),
        Some("logout+jwt"),
        "explicit typing (§2.4)"
    );
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("an RSA key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.address.as_str()]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("the logout token verifies against the published key")
        .claims
}

/// Logs `browser` out with an ID token hint (no confirmation needed).
async fn log_out(app: &TestApp, browser: &mut Browser, id_token: &str) {
    let page = browser
        .get(&logout_url(app, &[("id_token_hint", id_token)]))
        .await;
    assert_eq!(page.status, 200, "the signed-out page: {}", page.body);
    assert!(page.body.contains("signed out"), "{}", page.body);
}

#[tokio::test]
async fn back_channel_logout_posts_a_verifiable_logout_token_to_the_app() {
    // Arrange
    let (bc, seen) = receiver(0).await;
    let app = spawn_app_with(&bc_client(BC_APP, &bc)).await;
    let mut browser = Browser::new();
    let (tokens, _) = signed_in_to(&app, &mut browser, BC_APP).await;
    let id = decode_payload(&tokens.text("id_token"));

    // Act
    log_out(&app, &mut browser, &tokens.text("id_token")).await;

    // Assert
    assert!(
        eventually(5, || !seen.lock().unwrap().is_empty()).await,
        "a logout token arrives within 5 s"
    );
    let token = seen.lock().unwrap()[0].clone();
    let claims = verified_logout_claims(&app, &token, BC_APP.id).await;
    assert_eq!(claims["iss"], app.address);
    assert!(
        claims["aud"] == BC_APP.id
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.contains(&BC_APP.id.into())),
        "{claims}"
    );
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(
        iat.zip(exp).is_some_and(|(iat, exp)| exp > iat),
        "iat and exp: {claims}"
    );
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(claims["sid"], id["sid"], "sid is the ID token's");
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(
        claims["events"]["http://schemas.openid.net/event/backchannel-logout"],
        serde_json::json!({}),
        "{claims}"
    );
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token has no nonce"
    );
}

#[tokio::test]
async fn a_back_channel_receiver_that_fails_gets_the_logout_token_again() {
    // Arrange: the receiver answers 500 the first time.
    let (bc, seen) = receiver(1).await;
    let app = spawn_app_with(&bc_client(BC_APP, &bc)).await;
    let mut browser = Browser::new();
    let (tokens, _) = signed_in_to(&app, &mut browser, BC_APP).await;
    let sid = decode_payload(&tokens.text("id_token"))["sid"].clone();

    // Act
    log_out(&app, &mut browser, &tokens.text("id_token")).await;

    // Assert
    assert!(
        eventually(10, || seen.lock().unwrap().len() >= 2).await,
        "delivered again after the 500: {} attempt(s)",
        seen.lock().unwrap().len()
    );
    let retried = seen.lock().unwrap()[1].clone();
    let claims = verified_logout_claims(&app, &retried, BC_APP.id).await;
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["sub"], ALICE);
    // Once the deliverer has recorded the success the queue is empty; then drive it a day
    // later, past any backoff: nothing is left to send.
    let mut depth = 1;
    for _ in 0..50 {
        depth = app.state.store.logout_queue_depth().await.unwrap();
        if depth == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, 0, "the delivered logout leaves the queue");
    app.state.clock.advance(Duration::from_secs(24 * 3600));
    let attempted = guildgate::jobs::deliver_due_logouts(&app.state)
        .await
        .unwrap();
    assert_eq!(
        attempted, 0,
        "the queue is empty once one delivery succeeded"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no more deliveries once one succeeded"
    );
}

#[tokio::test]
async fn back_channel_logout_reaches_only_the_apps_of_the_ended_session() {
    // Arrange: Alice uses `bcapp` (and `other`); `bcidle` has a receiver but she never used it.
    // Bob has his own session at `bcapp`.
    let (used_uri, used) = receiver(0).await;
    let (idle_uri, idle) = receiver(0).await;
    let app = spawn_app_with(&format!(
        "{}{}",
        bc_client(BC_APP, &used_uri),
        bc_client(BC_IDLE, &idle_uri)
    ))
    .await;
    let mut alice = Browser::new();
    let (tokens, _) = signed_in_to(&app, &mut alice, BC_APP).await;
    tokens_via(&app, &mut alice, OTHER_RP, &[], ALICE).await;
    let mut bob = Browser::new();
    let bob_tokens = tokens_via(&app, &mut bob, BC_APP, &[], BOB).await;

    // Act
    log_out(&app, &mut alice, &tokens.text("id_token")).await;

    // Assert
    assert!(
        eventually(5, || !used.lock().unwrap().is_empty()).await,
        "the app she used is told"
    );
    let attempted = guildgate::jobs::deliver_due_logouts(&app.state)
        .await
        .unwrap();
    assert_eq!(attempted, 0, "nothing else was queued");
    let delivered = used.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "one token, for Alice's session only");
    let claims = verified_logout_claims(&app, &delivered[0], BC_APP.id).await;
    assert_eq!(claims["sub"], ALICE);
    assert!(
        idle.lock().unwrap().is_empty(),
        "an app she never used is not told"
    );
    assert_eq!(
        userinfo_status(&app, &bob_tokens.text("access_token")).await,
        200,
        "Bob's session is untouched"
    );
}

#[tokio::test]
async fn revoking_a_person_tells_the_apps_of_their_sessions_and_of_their_offline_grants() {
    // Arrange: one app through a session, another holding only an offline_access grant.
    let (bc, seen) = receiver(0).await;
    let offline = OFFLINE_RP;
    let app = spawn_app_with(&format!(
        "{}{}",
        bc_client(BC_APP, &bc),
        offline_client_toml(&format!("backchannel_logout_uri = \"{bc}\""))
    ))
    .await;
    let mut browser = Browser::new();
    tokens_via(&app, &mut browser, BC_APP, &[], ALICE).await;
    let kept = offline_tokens_via(&app, &mut browser, offline, ALICE).await;

    // Act: what `guildgate users revoke` does.
    let now = app.state.clock.now();
    let ended = guildgate::flows::logout::revoke_user(
        &app.state.context(),
        &crate::helpers::discord_id(ALICE),
        now,
    )
    .await
    .unwrap();

    // Assert: both apps get a logout token; the offline one has no sid, only sub.
    assert_eq!(ended.len(), 1);
    assert!(
        eventually(10, || seen.lock().unwrap().len() >= 3).await,
        "{} deliveries",
        seen.lock().unwrap().len()
    );
    let tokens: Vec<serde_json::Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|t| decode_payload(t))
        .collect();
    let for_offline: Vec<&serde_json::Value> =
        tokens.iter().filter(|t| t["aud"] == "offline").collect();
    assert!(
        for_offline
            .iter()
            .any(|t| t.get("sid").is_none() && t["sub"] == ALICE),
        "{tokens:?}"
    );
    assert!(
        tokens
            .iter()
            .any(|t| t["aud"] == "bcapp" && t["sid"].is_string()),
        "{tokens:?}"
    );
    let refreshed = refresh_as(&app, offline, kept.text("refresh_token").as_str(), None).await;
    assert_eq!(refreshed.status, 400, "the offline grant is revoked too");
}
