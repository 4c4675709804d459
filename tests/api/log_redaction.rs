//! Nothing secret reaches the log: a whole sign-in, token exchange, refresh, userinfo (with a
//! token wrongly put in the URL) and logout with an `id_token_hint` run under the production
//! subscriber (JSON, debug level) writing into memory, and none of the codes, states, tokens,
//! hints, cookies or secrets appear in what it wrote.

use crate::browser::{Browser, query_of};
use crate::helpers::{ALICE, OTHER, OTHER_REDIRECT, OTHER_SECRET, spawn_app};
use crate::log_capture::Capture;

#[tokio::test]
async fn a_sign_in_token_exchange_refresh_userinfo_and_logout_log_no_secret() {
    // Arrange: the production subscriber, more verbose than production, into memory.
    let capture = Capture::start();
    let app = spawn_app().await;
    let app_state = "app-state-Zq8XkP3vLr";
    let nonce = "nonce-Hy7TmW2cQe9B";
    let mut browser = Browser::new();

    // Act: the browser signs in through the fake Discord.
    let start = browser
        .get(&app.authorize_url(
            OTHER,
            OTHER_REDIRECT,
            &[("state", app_state), ("nonce", nonce)],
        ))
        .await;
    let binding = browser
        .cookie(&app.address, "guildgate_login")
        .expect("binding cookie");
    app.discord.sign_in_as(Some(ALICE));
    let back = browser.get(&start.location.expect("to Discord")).await;
    let callback = back.location.expect("back from Discord");
    let upstream = query_of(&callback);
    let done = browser.get(&callback).await;
    let code = query_of(&done.location.expect("to the app"))["code"].clone();
    let session = browser
        .cookie(&app.address, "guildgate_session")
        .expect("session cookie");

    // Act: the app exchanges the code, refreshes, and calls userinfo twice.
    let basic = Some((OTHER, OTHER_SECRET));
    let first: serde_json::Value = app
        .token(
            basic,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", OTHER_REDIRECT),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let refresh_token = first["refresh_token"].as_str().expect("a refresh token");
    let second: serde_json::Value = app
        .token(
            basic,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let access = second["access_token"].as_str().expect("an access token");
    let in_url = app
        .get(&format!("/userinfo?access_token={access}"))
        .await
        .status();
    assert_eq!(in_url, 400, "a token in the URL is refused");
    assert_eq!(app.userinfo(access).await.status(), 200);

    // Act: the person signs out from the app, with an id_token_hint in the URL.
    let id_token = second["id_token"].as_str().expect("an ID token");
    browser
        .get(&format!(
            "{}/logout?id_token_hint={id_token}&client_id={OTHER}&state={app_state}",
            app.address
        ))
        .await;
    let log = capture.stop();

    // Assert: the log was written, with redacted targets ...
    assert!(
        log.contains("/callback/discord?code=[redacted]&state=[redacted]"),
        "the callback's target is logged redacted:\n{log}"
    );
    assert!(
        log.contains("/userinfo?access_token=[redacted]"),
        "the refused userinfo call is logged redacted"
    );
    // ... and none of the secrets.
    let secrets = [
        ("Discord's code", upstream["code"].as_str()),
        ("our state at Discord", upstream["state"].as_str()),
        ("the binding cookie", binding.as_str()),
        ("the session cookie", session.as_str()),
        ("the authorization code", code.as_str()),
        ("the app's state", app_state),
        ("the nonce", nonce),
        ("the client secret", OTHER_SECRET),
        (
            "the first access token",
            first["access_token"].as_str().unwrap(),
        ),
        ("the first refresh token", refresh_token),
        ("the first ID token", first["id_token"].as_str().unwrap()),
        ("the second access token", access),
        (
            "the second refresh token",
            second["refresh_token"].as_str().unwrap(),
        ),
        ("the ID token hint", id_token),
    ];
    for (what, secret) in secrets {
        assert!(secret.len() >= 12, "{what} is long enough to look for");
        assert!(!log.contains(secret), "{what} is in the log");
    }
    // JWT payloads carry the person's data; no JWT part may appear either.
    for token in [first["id_token"].as_str().unwrap(), access] {
        for part in token.split('.').skip(1) {
            assert!(!log.contains(part), "a part of a JWT is in the log");
        }
    }
}
