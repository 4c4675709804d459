//! Requests too long for the HTTP parser: a request line over 60 KiB gets a readable 414 (a page
//! for people, OAuth2 JSON for apps) instead of actix's empty 400, over a raw socket and through
//! an HTTP client, after the connection's earlier requests were answered as usual; a form body
//! of 64 KiB is no long line and gets its endpoint's usual answer.
//! Those refusals are counted and carry the usual headers.

use crate::helpers::{Reply, TestApp, spawn_app_as, spawn_app_with};
use crate::metrics::Scrape;
use guildgate::routes::{MAX_FORM_BYTES, MAX_VALUE_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A service client, so that `/token` has a usual answer to give.
const DEPLOYER: (&str, &str) = ("deployer", "deployer-secret-deployer");

async fn app() -> TestApp {
    spawn_app_with(&format!(
        "\n[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nclient_credentials = true\n\
         allowed_scopes = [\"deploy\"]\n",
        DEPLOYER.0, DEPLOYER.1
    ))
    .await
}

/// One answer read off a raw connection.
struct Answer {
    status: u16,
    /// Header lines, names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The app's `host:port`.
fn host(app: &TestApp) -> &str {
    app.address.trim_start_matches("http://")
}

/// Writes `request` and reads one answer (with a `Content-Length` body) off `stream`.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Answer {
    stream
        .write_all(request)
        .await
        .expect("the request is sent");
    let mut read = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.expect("the answer is read");
        assert!(
            n > 0,
            "the connection closed without an answer: {:?}",
            String::from_utf8_lossy(&read)
        );
        read.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("a content-length: {head}"));
    while read.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("the body is read");
        assert!(n > 0, "the connection closed inside the body");
        read.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&read[head_end..head_end + length]).into_owned(),
    }
}

/// A GET of `target` on an open connection.
fn get(app: &TestApp, target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\n\r\n",
        host(app)
    )
    .into_bytes()
}

/// A client-credentials form of exactly [`MAX_FORM_BYTES`] (the largest accepted), padded with
/// values each under [`MAX_VALUE_BYTES`] and no line end anywhere.
fn full_form() -> String {
    let mut form = String::from("grant_type=client_credentials");
    let mut n = 0;
    while form.len() < MAX_FORM_BYTES {
        let room = MAX_FORM_BYTES - form.len();
        let prefix = format!("&pad{n}=");
        let value = (MAX_VALUE_BYTES - 1).min(room.saturating_sub(prefix.len()));
        form.push_str(&prefix);
        form.push_str(&"p".repeat(value));
        n += 1;
    }
    assert_eq!(form.len(), MAX_FORM_BYTES);
    form
}

/// Asserts the screen's page: 414, HTML, says the request cannot be read.
fn assert_readable_414(status: u16, content_type: &str, body: &str, why: &str) {
    assert_eq!(status, 414, "{why}: {body:.300}");
    assert!(
        content_type.starts_with("text/html"),
        "{why}: {content_type}"
    );
    assert!(
        body.contains("This request cannot be read"),
        "{why}: {body:.500}"
    );
}

#[tokio::test]
async fn an_over_long_request_line_after_ordinary_requests_on_one_connection_gets_a_readable_414() {
    // Arrange: one keep-alive connection; a 64 KiB body, then a 64 KiB state.
    let app = app().await;
    let mut connection = TcpStream::connect(host(&app)).await.expect("connects");
    let body = full_form();
    let token = format!(
        "POST /token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        host(&app),
        base64_basic(DEPLOYER),
        body.len()
    );
    let long = format!("/authorize?client_id=app&state={}", "s".repeat(64 * 1024));

    // Act
    let health = exchange(&mut connection, &get(&app, "/healthz")).await;
    let tokens = exchange(&mut connection, token.as_bytes()).await;
    let after_body = exchange(&mut connection, &get(&app, "/healthz")).await;
    let refused = exchange(&mut connection, &get(&app, &long)).await;

    // Assert: the ordinary requests were answered as usual, on one connection ...
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        tokens.status, 200,
        "a 64 KiB form is no long line: {}",
        tokens.body
    );
    assert!(tokens.body.contains("access_token"), "{}", tokens.body);
    assert_eq!(after_body.status, 200, "the screen skipped the body");
    // ... and the long one gets a page, and the connection ends.
    assert_readable_414(
        refused.status,
        refused.header("content-type"),
        &refused.body,
        "raw socket",
    );
    assert_eq!(refused.header("connection"), "close");
    assert!(!refused.header("content-security-policy").is_empty());
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connection.read_to_end(&mut rest),
    )
    .await
    .expect("the connection is closed, not left hanging");
    assert!(
        closed.is_err() || rest.is_empty(),
        "nothing follows the refusal: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn an_http_client_sending_an_over_long_authorization_request_reads_the_414_page() {
    // Arrange: the longest URI an HTTP client can send is 65,534 bytes (the `http` crate's
    // limit), which is already over the screen's 60 KiB.
    let app = app().await;
    let url = app.authorize_url("app", "https://app.example.com/oidc/callback", &[]);
    let url = format!("{url}&pad={}", "s".repeat(63 * 1024));

    // Act
    let response = app
        .http
        .get(&url)
        .send()
        .await
        .expect("an answer, not a reset connection");

    // Assert
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(response.headers().get("location").is_none(), "no redirect");
    assert_eq!(
        response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close"),
        "the screen answered (the edge's own 414 keeps the connection)"
    );
    let body = response.text().await.unwrap_or_default();
    assert_readable_414(status, &content_type, &body, "reqwest");
}

#[tokio::test]
async fn an_over_long_request_line_at_an_app_endpoint_is_json_invalid_request() {
    // Arrange
    let app = app().await;
    let mut connection = TcpStream::connect(host(&app)).await.expect("connects");
    let path = format!("/userinfo?x={}", "x".repeat(64 * 1024));
    let via_client = format!("{}/userinfo?x={}", app.address, "x".repeat(63 * 1024));

    // Act
    let raw = exchange(&mut connection, &get(&app, &path)).await;
    let client = Reply::read(
        app.http
            .get(&via_client)
            .send()
            .await
            .expect("an answer, not a reset connection"),
    )
    .await;

    // Assert
    assert_eq!(raw.status, 414, "{}", raw.body);
    assert!(
        raw.header("content-type").starts_with("application/json"),
        "{}",
        raw.header("content-type")
    );
    let body: serde_json::Value = serde_json::from_str(&raw.body).expect("JSON");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(client.status, 414, "{}", client.body);
    assert_eq!(client.error(), "invalid_request");
    for (how, description) in [("raw", &body), ("client", &client.body)] {
        assert!(
            description["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("request line")),
            "{how}: the screen answered: {description}"
        );
    }
}

#[tokio::test]
async fn a_64_kib_form_body_gets_the_token_endpoints_usual_answers() {
    // Arrange
    let app = app().await;
    let body = full_form();
    let post = |basic: (&'static str, &'static str)| {
        app.http
            .post(format!("{}/token", app.address))
            .basic_auth(basic.0, Some(basic.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };

    // Act
    let issued = Reply::read(post(DEPLOYER).await.expect("answers")).await;
    let refused = Reply::read(post((DEPLOYER.0, "wrong")).await.expect("answers")).await;

    // Assert
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.text("scope"), "deploy");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.error(), "invalid_client");
}

/// `id:secret` for a Basic `Authorization` header.
fn base64_basic((id, secret): (&str, &str)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

#[tokio::test]
async fn a_request_head_over_120_kib_gets_a_readable_431() {
    // Arrange: sixteen 8 KiB headers (128 KiB, where actix answers 431 with no body).
    let app = app().await;
    let mut connection = TcpStream::connect(host(&app)).await.expect("connects");
    let pads: String = (0..16)
        .map(|n| format!("X-Pad-{n}: {}\r\n", "h".repeat(8 * 1024)))
        .collect();
    let request = format!(
        "GET /authorize?client_id=app HTTP/1.1\r\nHost: {}\r\n{pads}\r\n",
        host(&app)
    );

    // Act
    let refused = exchange(&mut connection, request.as_bytes()).await;

    // Assert
    assert_eq!(refused.status, 431, "{}", refused.body);
    assert!(
        refused.header("content-type").starts_with("text/html"),
        "{}",
        refused.header("content-type")
    );
    assert!(
        refused.body.contains("This request cannot be read"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn an_over_long_request_line_after_an_empty_line_gets_the_readable_414_too() {
    // Arrange: RFC 9112 §2.2 lets a client send an empty line before a request line (some send
    // one after a POST body); actix skips it, and so must the screen.
    let app = app().await;
    let mut connection = TcpStream::connect(host(&app)).await.expect("connects");
    let mut request = b"\r\n".to_vec();
    request.extend(get(
        &app,
        &format!("/authorize?client_id=app&state={}", "s".repeat(64 * 1024)),
    ));

    // Act
    let refused = exchange(&mut connection, &request).await;

    // Assert
    assert_readable_414(
        refused.status,
        refused.header("content-type"),
        &refused.body,
        "after an empty line",
    );
}

#[tokio::test]
async fn an_over_long_request_refused_before_actix_is_counted_and_carries_hsts_on_https() {
    // Arrange
    let app = spawn_app_as("https", "").await;
    let mut connection = TcpStream::connect(host(&app)).await.expect("connects");
    let long = get(
        &app,
        &format!("/authorize?client_id=app&state={}", "s".repeat(64 * 1024)),
    );

    // Act
    let refused = exchange(&mut connection, &long).await;
    let scrape = Scrape::of(&app).await;

    // Assert: the same headers and the same count as any other answer.
    assert_eq!(refused.status, 414);
    assert_eq!(
        refused.header("strict-transport-security"),
        "max-age=63072000"
    );
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/authorize",status="414"}"#),
        1.0,
        "{}",
        scrape.text
    );
}
