//! Discord answering badly at the callback: a body too large to read and a rate limit longer
//! than a person should wait. Both end the login cleanly, with a page that leads back to the app.

use crate::browser::{Browser, Page, query_of};
use crate::helpers::{ALICE, TestApp, callback_url_after_discord, link_back_params, spawn_app};
use guildgate::discord::fake::{FakeRoute, Fault};

const TEN_MIB: usize = 10 * 1024 * 1024;

/// A login Discord approves, with `fault` on `route`; the page the callback answers with.
async fn callback_with_fault(app: &TestApp, route: FakeRoute, fault: Fault) -> (Page, Browser) {
    let mut browser = Browser::new();
    app.discord.inject(route, fault);
    let callback = callback_url_after_discord(app, &mut browser, "st").await;
    let page = browser.get(&callback).await;
    app.discord.clear_faults();
    (page, browser)
}

/// Alice as `GET /users/@me` shows her: a usable answer, whatever follows it.
fn alice() -> serde_json::Value {
    serde_json::json!({
        "id": ALICE, "username": "alice", "discriminator": "0", "global_name": "Alice",
        "avatar": null, "email": "alice@example.com", "verified": true,
    })
}

#[tokio::test]
async fn a_usable_user_answer_padded_to_ten_mib_fails_the_login_cleanly() {
    // Arrange: read whole, the answer would sign Alice in; it is simply too big to read.
    let app = spawn_app().await;
    let started = std::time::Instant::now();

    // Act
    let (page, browser) = callback_with_fault(
        &app,
        FakeRoute::Me,
        Fault::OversizedBody {
            json: alice(),
            padding: TEN_MIB,
            times: 1,
        },
    )
    .await;

    // Assert: the page for an answer we could not use, pointing back to the app.
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.body.contains("Sign-in with Discord failed"),
        "{}",
        page.body
    );
    let link = link_back_params(&page.body);
    assert_eq!(link.get("error").map(String::as_str), Some("server_error"));
    assert_eq!(link["state"], "st");
    assert!(!link.contains_key("code"));
    assert!(browser.cookie(&app.address, "guildgate_session").is_none());
    assert_eq!(app.discord.calls(FakeRoute::Me), 1, "not retried");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_padded_answer_under_one_mib_is_read_and_used() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (page, _) = callback_with_fault(
        &app,
        FakeRoute::Me,
        Fault::OversizedBody {
            json: alice(),
            padding: 512 * 1024,
            times: 1,
        },
    )
    .await;

    // Assert: Alice is signed in and the app gets its code.
    let location = page.location.unwrap_or_else(|| panic!("{}", page.body));
    assert!(query_of(&location).contains_key("code"), "{location}");
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_wait_budget_is_a_503_page_with_retry_after() {
    // Arrange
    let app = spawn_app().await;
    let started = std::time::Instant::now();

    // Act: Discord asks us to wait 42.5 seconds at the code exchange.
    let (page, response_headers) = {
        let mut browser = Browser::new();
        app.discord.inject(
            FakeRoute::Token,
            Fault::RateLimited {
                retry_after: 42.5,
                times: 5,
            },
        );
        let callback = callback_url_after_discord(&app, &mut browser, "st").await;
        let response = app
            .http
            .get(&callback)
            .header(
                "cookie",
                format!(
                    "guildgate_login={}",
                    browser
                        .cookie(&app.address, "guildgate_login")
                        .expect("binding cookie")
                ),
            )
            .send()
            .await
            .expect("callback");
        let headers = response.headers().clone();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        (
            Page {
                status,
                location: None,
                body,
            },
            headers,
        )
    };

    // Assert
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(
        response_headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("43"),
        "whole seconds, rounded up"
    );
    assert!(page.body.contains("43 seconds"), "{}", page.body);
    let link = link_back_params(&page.body);
    assert_eq!(
        link.get("error").map(String::as_str),
        Some("temporarily_unavailable")
    );
    assert_eq!(link["state"], "st");
}
