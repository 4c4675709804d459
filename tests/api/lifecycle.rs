//! Smoke tests across the token lifecycle: refresh, revocation, logout with back-channel
//! delivery, consent. (Each rule's detailed cases live in their own modules.)

use crate::browser::{Browser, query_of};
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, OTHER, OTHER_REDIRECT, OTHER_SECRET, TestApp, spawn_app, spawn_app_with,
};
use std::sync::{Arc, Mutex};

async fn signed_in(app: &TestApp, browser: &mut Browser) -> serde_json::Value {
    let code = app
        .code_for(
            browser,
            OTHER,
            OTHER_REDIRECT,
            &[("scope", "openid profile")],
            ALICE,
        )
        .await;
    let response = app
        .token(
            Some((OTHER, OTHER_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", OTHER_REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.token(
        Some((OTHER, OTHER_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_again_revokes_the_whole_family() {
    // Arrange
    let app = spawn_app().await;
    let first = signed_in(&app, &mut Browser::new()).await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: serde_json::Value = refresh(&app, old).await.json().await.unwrap();
    let newest = second["refresh_token"].as_str().unwrap();
    assert_ne!(newest, old, "every use rotates");
    assert_eq!(
        app.userinfo(second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Act: the old token comes back (stolen and replayed).
    let replay = refresh(&app, old).await;

    // Assert
    assert_eq!(replay.status(), 400);
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        refresh(&app, newest).await.status(),
        400,
        "the family is revoked"
    );
    assert_eq!(
        app.userinfo(second["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let introspection: serde_json::Value = app
        .http
        .post(format!("{}/introspect", app.address))
        .basic_auth(OTHER, Some(OTHER_SECRET))
        .form(&[("token", second["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], false);
    let id = decode_payload(second["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], ALICE, "the refreshed ID token keeps sub");
}

#[tokio::test]
async fn five_concurrent_refreshes_with_one_token_give_exactly_one_success() {
    let app = spawn_app().await;
    let first = signed_in(&app, &mut Browser::new()).await;
    let token = first["refresh_token"].as_str().unwrap().to_owned();
    let results = futures_join(&app, &token, 5).await;
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
}

async fn futures_join(app: &TestApp, token: &str, n: usize) -> Vec<u16> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let (http, url, token) = (
            app.http.clone(),
            format!("{}/token", app.address),
            token.to_owned(),
        );
        handles.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth(OTHER, Some(OTHER_SECRET))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A back-channel logout receiver on 127.0.0.1 that fails its first `fail_first` deliveries.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let store = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/bc",
        listener.local_addr().unwrap().port()
    );
    let server = actix_web::HttpServer::new(move || {
        let store = store.clone();
        actix_web::App::new().route(
            "/bc",
            actix_web::web::post().to(
                move |form: actix_web::web::Form<std::collections::HashMap<String, String>>| {
                    let store = store.clone();
                    async move {
                        let mut seen = store.lock().unwrap();
                        seen.push(form.get("logout_token").cloned().unwrap_or_default());
                        if seen.len() <= fail_first {
                            actix_web::HttpResponse::InternalServerError().finish()
                        } else {
                            actix_web::HttpResponse::Ok().finish()
                        }
                    }
                },
            ),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, seen)
}

#[tokio::test]
async fn logout_with_a_hint_ends_the_session_and_the_app_gets_a_logout_token_even_after_a_500() {
    // Arrange: an app with a back-channel receiver that fails once.
    let (bc, seen) = receiver(1).await;
    let app = spawn_app_with(&format!(
        "[[clients]]\nid = \"bcapp\"\nsecret = \"bcapp-secret-bcapp-secret\"\nredirect_uris = [\"https://bc.example.com/cb\"]\npost_logout_redirect_uris = [\"https://bc.example.com/bye\"]\nbackchannel_logout_uri = \"{bc}\"\n"
    ))
    .await;
    let mut browser = Browser::new();
    let code = app
        .code_for(
            &mut browser,
            "bcapp",
            "https://bc.example.com/cb",
            &[],
            ALICE,
        )
        .await;
    let tokens: serde_json::Value = app
        .token(
            Some(("bcapp", "bcapp-secret-bcapp-secret")),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://bc.example.com/cb"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = decode_payload(id_token)["sid"].as_str().unwrap().to_owned();

    // Act
    let url = format!(
        "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye1",
        app.address,
        url::form_urlencoded::byte_serialize(b"https://bc.example.com/bye").collect::<String>()
    );
    let page = browser.get(&url).await;

    // Assert: redirected with state, session and tokens gone.
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.unwrap();
    assert!(
        location.starts_with("https://bc.example.com/bye"),
        "{location}"
    );
    assert_eq!(query_of(&location)["state"], "bye1");
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let again = browser
        .get(&app.authorize_url("bcapp", "https://bc.example.com/cb", &[("prompt", "none")]))
        .await;
    assert_eq!(
        query_of(&again.location.unwrap())["error"],
        "login_required"
    );
    // The receiver answered 500 once; the token is delivered again within a few seconds.
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = seen.lock().unwrap().clone();
        if delivered.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        delivered.len() >= 2,
        "retried after the 500: {} deliveries",
        delivered.len()
    );
    let logout = delivered.last().unwrap();
    let header = jsonwebtoken::decode_header(logout).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let key = app
        .state
        .keys
        .find(header.kid.as_deref().unwrap())
        .expect("a published key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["bcapp"]);
    validation.set_issuer(&[app.address.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(logout, key.decoding_key(), &validation)
        .expect("the logout token verifies against our key")
        .claims;
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["sub"], ALICE);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims.get("jti").is_some());
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_an_unregistered_return_address_is_not_followed() {
    let app = spawn_app().await;
    let mut browser = Browser::new();
    signed_in(&app, &mut browser).await;
    let url = format!(
        "{}/logout?client_id={OTHER}&post_logout_redirect_uri={}",
        app.address,
        url::form_urlencoded::byte_serialize(b"https://evil.example/").collect::<String>()
    );
    let confirm = browser.get(&url).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Sign out?"), "{}", confirm.body);
    // The session is still alive until the person confirms.
    let still = browser
        .get(&app.authorize_url(OTHER, OTHER_REDIRECT, &[("prompt", "none")]))
        .await;
    assert!(query_of(&still.location.unwrap()).contains_key("code"));
}

#[tokio::test]
async fn consent_once_asks_the_first_time_and_remembers_allow() {
    let app = spawn_app_with(
        "[[clients]]\nid = \"askme\"\nname = \"Ask Me App\"\nsecret = \"askme-secret-askme-secret\"\nredirect_uris = [\"https://ask.example.com/cb\"]\nconsent = \"once\"\n",
    )
    .await;
    let mut browser = Browser::new();
    let start = browser
        .get(&app.authorize_url(
            "askme",
            "https://ask.example.com/cb",
            &[("scope", "openid email")],
        ))
        .await;
    app.discord.sign_in_as(Some(ALICE));
    let back = browser.get(&start.location.unwrap()).await;
    let consent = browser.get(&back.location.unwrap()).await;
    assert_eq!(consent.status, 200);
    assert!(consent.body.contains("Ask Me App"), "names the app");
    assert!(consent.body.contains("email address"), "names the claims");
    let start = consent.body.find("name=\"ticket\" value=\"").unwrap() + 21;
    let ticket = &consent.body[start..start + consent.body[start..].find('"').unwrap()];
    let cookie = format!(
        "guildgate_session={}",
        browser.cookie(&app.address, "guildgate_session").unwrap()
    );
    let answer = app
        .http
        .post(format!("{}/consent", app.address))
        .header("cookie", &cookie)
        .form(&[("ticket", ticket), ("answer", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert!(query_of(answer.headers()["location"].to_str().unwrap()).contains_key("code"));
    // Remembered: the next authorization goes straight back with a code.
    let next = browser
        .get(&app.authorize_url(
            "askme",
            "https://ask.example.com/cb",
            &[("scope", "openid email")],
        ))
        .await;
    assert!(query_of(&next.location.unwrap()).contains_key("code"));
    // prompt=none with prompt=consent semantics: consent forced again shows the page.
    let forced = browser
        .get(&app.authorize_url(
            "askme",
            "https://ask.example.com/cb",
            &[("prompt", "consent")],
        ))
        .await;
    assert_eq!(forced.status, 200);
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify_after_it() {
    // Arrange: a token signed by the first key.
    let app = spawn_app().await;
    let before = signed_in(&app, &mut Browser::new()).await;
    let old_kid = app.state.keys.active().kid.clone();

    // Act: `guildgate keys rotate` writes a new key; the running process reloads the folder.
    let dir = app.state.settings.keys.dir.clone();
    let now = app.state.clock.now();
    let (_, active_from) = guildgate::keys::generate_key_file(&dir, now).unwrap();
    app.state.keys.reload(active_from).unwrap();
    let after = signed_in(&app, &mut Browser::new()).await;

    // Assert
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    assert_eq!(kid(before["access_token"].as_str().unwrap()), old_kid);
    assert_ne!(
        kid(after["id_token"].as_str().unwrap()),
        old_kid,
        "new tokens use the new key"
    );
    assert_eq!(
        app.userinfo(before["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let jwks: serde_json::Value = app.get("/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "both keys are published"
    );
}
