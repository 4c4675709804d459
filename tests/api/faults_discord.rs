//! Discord misbehaving while several people sign in and refresh: a long rate limit on the member
//! endpoint, server errors, and a Discord that stops answering. Sign-ins end in clear pages,
//! refreshes in `temporarily_unavailable`, nothing waits past `discord.timeout`, the rest of
//! guildgate stays fast, and the fake counts that guildgate sends no request Discord's answers
//! did not allow.

use crate::browser::{Browser, Page};
use crate::helpers::{ALICE, BOB, TestApp, spawn_app_with};
use guildgate::discord::fake::{FakeRoute, Fault};
use std::time::{Duration, Instant};

const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";
const STAFF: (&str, &str) = ("staff", "staff-secret-staff-secret");
const STAFF_REDIRECT: &str = "https://staff.example.com/cb";
/// Concurrent sign-ins in each drill.
const PEOPLE: usize = 4;
/// Past `discord.membership_ttl` (5 min): the next refresh re-checks the roles with Discord.
const LATER: Duration = Duration::from_secs(6 * 60);

/// An app for the community's staff role (so sign-ins and re-checks read the member endpoint),
/// Discord calls cut off after `timeout`.
async fn spawn(timeout: &str) -> TestApp {
    spawn_app_with(&format!(
        r#"
[[clients]]
id = "{id}"
secret = "{secret}"
redirect_uris = ["{STAFF_REDIRECT}"]
required_roles = ["{COMMUNITY}:{STAFF_ROLE}"]
refresh_tokens = true

[secrets]
encryption_key = "{key}"

[discord]
timeout = "{timeout}"
"#,
        id = STAFF.0,
        secret = STAFF.1,
        key = "ab".repeat(32),
    ))
    .await
}

/// A whole sign-in of Bob (always staff) in a fresh browser: the page the callback ends with,
/// and how long the callback took.
async fn sign_in(app: &TestApp) -> (Page, Duration) {
    let mut browser = Browser::new();
    let url = app.authorize_url(STAFF.0, STAFF_REDIRECT, &[("state", "st")]);
    let to_discord = browser.get(&url).await;
    let discord = to_discord.location.expect("to Discord");
    let back = browser.get(&discord).await;
    let callback = back.location.expect("Discord redirects back");
    let started = Instant::now();
    let page = browser.get(&callback).await;
    (page, started.elapsed())
}

/// `PEOPLE` sign-ins at once.
async fn sign_ins(app: &TestApp) -> Vec<(Page, Duration)> {
    let (a, b, c, d) = tokio::join!(sign_in(app), sign_in(app), sign_in(app), sign_in(app));
    vec![a, b, c, d]
}

/// Bob's tokens from a sign-in while Discord behaves.
async fn bob_tokens(app: &TestApp) -> serde_json::Value {
    app.discord.sign_in_as(Some(BOB));
    let (page, _) = sign_in(app).await;
    let location = page.location.expect("a redirect to the app");
    let code = crate::browser::query_of(&location)["code"].clone();
    let response = app
        .token(
            Some(STAFF),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", STAFF_REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("tokens")
}

fn calls(app: &TestApp) -> u32 {
    [
        FakeRoute::Token,
        FakeRoute::Me,
        FakeRoute::Guilds,
        FakeRoute::Member,
    ]
    .into_iter()
    .map(|r| app.discord.calls(r))
    .sum()
}

#[tokio::test]
async fn a_long_rate_limit_on_the_member_endpoint_ends_sign_ins_on_a_busy_page_without_retrying() {
    // Arrange: Discord asks for a minute's pause on the member endpoint (for every token).
    let app = spawn("10s").await;
    app.discord.sign_in_as(Some(BOB));
    app.discord.inject(
        FakeRoute::Member,
        Fault::RateLimited {
            retry_after: 60.0,
            times: 1000,
        },
    );

    // Act
    let pages = sign_ins(&app).await;

    // Assert
    for (page, took) in &pages {
        assert_eq!(page.status, 503, "{}", page.body);
        assert!(page.body.contains("Discord is busy"), "{}", page.body);
        assert!(
            *took < Duration::from_secs(3),
            "a minute's rate limit is not waited out: {took:?}"
        );
    }
    assert_eq!(
        app.discord.calls(FakeRoute::Member),
        PEOPLE as u32,
        "one member request per sign-in: none sent again inside retry_after"
    );
}

#[tokio::test]
async fn a_refresh_while_discord_rate_limits_or_fails_is_temporarily_unavailable() {
    // Arrange: Bob's roles need a re-check at his next refresh.
    let app = spawn("10s").await;
    let tokens = bob_tokens(&app).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    app.state.clock.advance(LATER);
    let refresh = |token: String| {
        let app = &app;
        async move {
            let response = app
                .token(
                    Some(STAFF),
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await;
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    // Act: server errors on every route a re-check uses; then (once they are gone and a
    // refresh has passed) a minute's rate limit. A rate limit is remembered for its whole
    // `retry_after`, so it comes last.
    for route in [FakeRoute::Token, FakeRoute::Guilds, FakeRoute::Member] {
        app.discord
            .inject(route, Fault::ServerError { times: 1000 });
    }
    let before = calls(&app);
    let failing = refresh(refresh_token.clone()).await;
    let failing_calls = calls(&app) - before;
    app.discord.clear_faults();
    let healed = refresh(refresh_token).await;
    let next = healed.1["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.state.clock.advance(LATER);
    for route in [FakeRoute::Token, FakeRoute::Guilds, FakeRoute::Member] {
        app.discord.inject(
            route,
            Fault::RateLimited {
                retry_after: 60.0,
                times: 1000,
            },
        );
    }
    let before = calls(&app);
    let limited = refresh(next).await;
    let limited_calls = calls(&app) - before;

    // Assert
    for (status, body) in [&limited, &failing] {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
    assert_eq!(limited_calls, 1, "a long 429 is not retried");
    assert!(
        failing_calls <= 2,
        "one retry of a 5xx at most, got {failing_calls} requests"
    );
    assert_eq!(
        healed.0, 200,
        "the refused refreshes did not spend the token: {}",
        healed.1
    );
}

#[tokio::test]
async fn while_discord_hangs_sign_ins_end_within_its_timeout_and_other_endpoints_stay_fast() {
    // Arrange: Alice holds an access token; then Discord stops answering `/users/@me`.
    let app = spawn("2s").await;
    let tokens = bob_tokens(&app).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    app.discord.sign_in_as(Some(ALICE));
    app.discord.inject(
        FakeRoute::Me,
        Fault::Slow {
            delay: Duration::from_secs(30),
            times: 1000,
        },
    );
    let before = app.discord.calls(FakeRoute::Me);

    // Act: sign-ins hang on Discord while discovery and userinfo keep being asked.
    let watch = async {
        let mut slowest = Duration::ZERO;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            let t = Instant::now();
            let discovery = app.get("/.well-known/openid-configuration").await;
            assert_eq!(discovery.status(), 200);
            let userinfo = app.userinfo(&access).await;
            assert_eq!(userinfo.status(), 200);
            slowest = slowest.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    let (pages, slowest) = tokio::join!(sign_ins(&app), watch);

    // Assert
    for (page, took) in &pages {
        assert!(
            *took < Duration::from_millis(3500),
            "nothing waits past discord.timeout (2 s): {took:?}"
        );
        assert!(page.status >= 500, "{} {}", page.status, page.body);
        assert!(page.body.contains("Return to the app"), "{}", page.body);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "discovery + userinfo took {slowest:?} while Discord hung"
    );
    assert_eq!(
        app.discord.calls(FakeRoute::Me) - before,
        PEOPLE as u32,
        "a timed-out request is not sent again"
    );
}
