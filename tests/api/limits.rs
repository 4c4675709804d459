//! Request-rate limits (`[limits]`): per source address on the browser and app endpoints, per
//! client id on the token endpoints, 429 with `Retry-After` (OAuth2 JSON for apps, a page for
//! people); the client address behind trusted proxies; a refused refresh keeps its token; and
//! oversized requests refused before they are parsed.

use crate::browser::Browser;
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, APP_SECRET, OTHER_RP, Reply, TestApp, refresh_as, spawn_app,
    spawn_app_with, tokens_via,
};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP client whose requests come from `127.0.0.{last}` (every 127/8 address reaches the app).
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// GET `/authorize` for the test app from `http`, with extra headers.
async fn authorize(app: &TestApp, http: &reqwest::Client, headers: &[(&str, &str)]) -> u16 {
    let mut request = http.get(app.authorize_url(APP, APP_REDIRECT, &[("state", "s")]));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .expect("the app answers")
        .status()
        .as_u16()
}

fn retry_after(answer: &Reply) -> u64 {
    answer
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is whole seconds: {:?}", answer.body))
}

fn assert_slow_down_json(answer: &Reply, context: &str) {
    assert_eq!(answer.status, 429, "{context}: {:?}", answer.body);
    assert_eq!(answer.error(), "temporarily_unavailable", "{context}");
    assert!(retry_after(answer) >= 1, "{context}");
    assert_eq!(answer.header("cache-control"), "no-store", "{context}");
}

#[tokio::test]
async fn authorize_beyond_the_per_address_limit_gets_a_429_page_with_retry_after() {
    // Arrange
    let app = spawn_app_with("[limits]\nauthorize_per_ip = \"2/min\"\n").await;
    let first = client_from(2);
    for i in 0..2 {
        assert_eq!(
            authorize(&app, &first, &[]).await,
            302,
            "request {i} is served"
        );
    }

    // Act
    let refused = first
        .get(app.authorize_url(APP, APP_REDIRECT, &[]))
        .send()
        .await
        .expect("the app answers");
    let callback = first
        .get(format!("{}/callback/discord?state=x&code=y", app.address))
        .send()
        .await
        .expect("the app answers");
    let elsewhere = authorize(&app, &client_from(3), &[]).await;
    app.state.clock.advance(Duration::from_secs(30));
    let later = authorize(&app, &first, &[]).await;

    // Assert
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=30).contains(&wait),
        "one request refills in 30 s: {wait}"
    );
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(refused.text().await.unwrap().contains("Too many requests"));
    assert_eq!(
        callback.status(),
        429,
        "the Discord callback shares the budget"
    );
    assert_eq!(elsewhere, 302, "another address has its own budget");
    assert_eq!(later, 302, "the budget refills");
}

#[tokio::test]
async fn app_endpoints_beyond_the_per_address_limit_answer_oauth_json_429() {
    // Arrange
    let app =
        spawn_app_with("[limits]\ntoken_per_ip = \"1/min\"\nuserinfo_per_ip = \"1/min\"\n").await;
    let http = client_from(4);
    let introspect = || {
        http.post(format!("{}/introspect", app.address))
            .basic_auth(APP, Some(APP_SECRET))
            .form(&[("token", "t")])
            .send()
    };
    let userinfo = || {
        http.get(format!("{}/userinfo", app.address))
            .bearer_auth("not-a-token")
            .send()
    };
    assert_eq!(introspect().await.unwrap().status(), 200);
    assert_eq!(userinfo().await.unwrap().status(), 401);

    // Act
    let introspect_again = Reply::read(introspect().await.unwrap()).await;
    let revoke = Reply::read(
        http.post(format!("{}/revoke", app.address))
            .basic_auth(APP, Some(APP_SECRET))
            .form(&[("token", "t")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let userinfo_again = Reply::read(userinfo().await.unwrap()).await;

    // Assert
    assert_slow_down_json(&introspect_again, "introspection");
    assert_slow_down_json(&revoke, "revocation shares the token endpoints' budget");
    assert_slow_down_json(&userinfo_again, "userinfo");
}

#[tokio::test]
async fn a_refresh_refused_by_the_per_client_limit_does_not_spend_the_refresh_token() {
    // Arrange: the code redemption spends the client's one request a minute.
    let app = spawn_app_with("[limits]\ntoken_per_client = \"1/min\"\n").await;
    let mut browser = Browser::new();
    let tokens = tokens_via(&app, &mut browser, OTHER_RP, &[], ALICE).await;
    let refresh_token = tokens.text("refresh_token");

    // Act
    let refused = refresh_as(&app, OTHER_RP, &refresh_token, None).await;
    let other_client = Reply::read(
        app.http
            .post(format!("{}/introspect", app.address))
            .basic_auth(APP, Some(APP_SECRET))
            .form(&[("token", "t")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    app.state.clock.advance(Duration::from_secs(60));
    let later = refresh_as(&app, OTHER_RP, &refresh_token, None).await;

    // Assert
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.error(), "temporarily_unavailable");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        other_client.status, 200,
        "other clients have their own budget"
    );
    assert_eq!(
        later.status, 200,
        "the refresh token was not spent by the refused request: {}",
        later.body
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    // Arrange: 127.0.0.1 is the proxy; one authorization a minute per client address.
    let app = spawn_app_with(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[limits]\nauthorize_per_ip = \"1/min\"\n",
    )
    .await;
    let proxy = client_from(1);
    let xff = |chain: &'static str| [("x-forwarded-for", chain)];

    // Act
    let first = authorize(&app, &proxy, &xff("203.0.113.1")).await;
    let same_client = authorize(&app, &proxy, &xff("198.51.100.9, 203.0.113.1")).await;
    let other_client = authorize(&app, &proxy, &xff("203.0.113.2")).await;
    let forwarded = authorize(&app, &proxy, &[("forwarded", "for=203.0.113.3")]).await;
    // From a peer that is not a trusted proxy the header is the client's own claim: ignored.
    let direct = client_from(5);
    let spoofing_first = authorize(&app, &direct, &xff("203.0.113.4")).await;
    let spoofing_again = authorize(&app, &direct, &xff("203.0.113.5")).await;

    // Assert
    assert_eq!(first, 302);
    assert_eq!(
        same_client, 429,
        "the right-most untrusted address counts, not what the client prepended"
    );
    assert_eq!(other_client, 302);
    assert_eq!(forwarded, 302, "Forwarded (RFC 7239) is read too");
    assert_eq!(spoofing_first, 302);
    assert_eq!(
        spoofing_again, 429,
        "an untrusted peer cannot pick its address"
    );
}

#[tokio::test]
async fn failed_client_authentication_is_counted_per_forwarded_client_behind_a_trusted_proxy() {
    // Arrange: two failures a minute per address; both clients come through the proxy.
    let app = spawn_app_with(
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n[limits]\nfailed_auth_per_ip = \"2/min\"\n",
    )
    .await;
    let from = |client: &'static str| {
        app.http
            .post(format!("{}/introspect", app.address))
            .header("x-forwarded-for", client)
            .basic_auth(APP, Some("wrong-secret"))
            .form(&[("token", "t")])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(from("203.0.113.7").await.unwrap().status(), 401);
    }

    // Act
    let attacker = from("203.0.113.7").await.unwrap().status();
    let bystander = from("203.0.113.8").await.unwrap().status();

    // Assert
    assert_eq!(attacker, 429);
    assert_eq!(
        bystander, 401,
        "the proxy's other clients are not refused for the attacker's failures"
    );
}

#[tokio::test]
async fn a_one_megabyte_form_is_refused_with_413_before_it_is_read_or_parsed() {
    // Arrange: a signed-in grant; a token request announcing a 1 MB form body.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let tokens = tokens_via(&app, &mut browser, OTHER_RP, &[], ALICE).await;
    let refresh_token = tokens.text("refresh_token");
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connects");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", OTHER_RP.id, OTHER_RP.secret));
    let start = format!("grant_type=refresh_token&refresh_token={refresh_token}&padding=");

    // Act: only the head and the start of the body are sent; the answer must not wait for more.
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{start}",
        1024 * 1024
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let mut chunk = vec![0u8; 4096];
    while !answer.contains('}') {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("answered without the rest of the body")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        answer.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    let after = refresh_as(&app, OTHER_RP, &refresh_token, None).await;

    // Assert
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("invalid_request"),
        "an OAuth2 JSON error: {answer}"
    );
    assert_eq!(
        after.status, 200,
        "the refused request did not reach the grant: {}",
        after.body
    );
}
