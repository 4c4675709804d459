//! HTTP answers at the edge, before any endpoint logic: wrong methods (405 with `Allow`), `HEAD`,
//! parameters that are not UTF-8, and oversized queries, values and bodies. Apps get OAuth2 JSON
//! errors, people get readable pages; nobody gets an empty body.

use crate::helpers::{APP, APP_REDIRECT, APP_SECRET, Reply, TestApp, spawn_app};
use guildgate::routes::{ENDPOINTS, MAX_FORM_BYTES, MAX_QUERY_BYTES};
use reqwest::Method;

async fn send(app: &TestApp, method: Method, path: &str) -> reqwest::Response {
    app.http
        .request(method, format!("{}{path}", app.address))
        .send()
        .await
        .expect("request reaches the app")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a readable HTML page (not an empty body) with `status`.
async fn assert_page(response: reqwest::Response, status: u16, why: &str) {
    assert_eq!(response.status().as_u16(), status, "{why}");
    assert!(
        header(&response, "content-type").starts_with("text/html"),
        "{why}: an HTML page"
    );
    let body = response.text().await.unwrap_or_default();
    assert!(
        body.contains("<h1"),
        "{why}: a page with a heading: {body:?}"
    );
}

/// Asserts an OAuth2 JSON `invalid_request` with `status`.
async fn assert_invalid_request(response: reqwest::Response, status: u16, why: &str) {
    let answer = Reply::read(response).await;
    assert_eq!(answer.status, status, "{why}: {:?}", answer.body);
    assert_eq!(
        answer.error(),
        "invalid_request",
        "{why}: {:?}",
        answer.body
    );
}

#[tokio::test]
async fn wrong_methods_on_app_endpoints_get_405_with_allow_and_an_oauth_error() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (Method::GET, "/token", "POST"),
        (Method::PUT, "/userinfo", "GET, HEAD, POST"),
        (Method::GET, "/revoke", "POST"),
        (Method::DELETE, "/introspect", "POST"),
        (Method::POST, "/jwks.json", "GET, HEAD"),
        (
            Method::POST,
            "/.well-known/openid-configuration",
            "GET, HEAD",
        ),
        (Method::OPTIONS, "/token", "POST"),
    ];

    for (method, path, allow) in cases {
        // Act
        let response = send(&app, method.clone(), path).await;

        // Assert
        let why = format!("{method} {path}");
        assert_eq!(header(&response, "allow"), allow, "{why}");
        assert_invalid_request(response, 405, &why).await;
    }
}

#[tokio::test]
async fn wrong_methods_on_browser_pages_get_405_with_allow_and_a_readable_page() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (Method::PUT, "/authorize", "GET, HEAD, POST"),
        (Method::POST, "/callback/discord", "GET, HEAD"),
        (Method::GET, "/consent", "POST"),
        (Method::DELETE, "/logout", "GET, HEAD, POST"),
    ];

    for (method, path, allow) in cases {
        // Act
        let response = send(&app, method.clone(), path).await;

        // Assert
        let why = format!("{method} {path}");
        assert_eq!(header(&response, "allow"), allow, "{why}");
        assert_page(response, 405, &why).await;
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    // Arrange
    let app = spawn_app().await;
    let authorize = app
        .authorize_url(APP, APP_REDIRECT, &[("state", "s")])
        .replace(&app.address, "");
    let paths = [
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/healthz",
        "/logout",
        authorize.as_str(),
    ];

    for path in paths {
        // Act
        let get = send(&app, Method::GET, path).await;
        let head = send(&app, Method::HEAD, path).await;

        // Assert
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            header(&head, "content-type"),
            header(&get, "content-type"),
            "HEAD {path}"
        );
        assert_eq!(head.text().await.unwrap(), "", "HEAD {path} has no body");
    }
}

#[tokio::test]
async fn head_on_a_post_only_endpoint_is_405() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = send(&app, Method::HEAD, "/token").await;

    // Assert
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), "POST");
}

#[tokio::test]
async fn every_method_in_the_endpoint_table_reaches_its_handler() {
    // Arrange
    let app = spawn_app().await;

    for endpoint in ENDPOINTS {
        for method in endpoint.methods {
            // Act: an empty request; the handler refuses it in its own way.
            let method = Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let mut request = app
                .http
                .request(method.clone(), format!("{}{}", app.address, endpoint.path));
            if method == Method::POST {
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("");
            }
            let response = request.send().await.expect("request");

            // Assert
            let status = response.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {} is mounted (got {status})",
                endpoint.path
            );
        }
    }
}

#[tokio::test]
async fn unknown_paths_stay_404() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/nothing-here", "/token/", "/TOKEN"] {
        // Act
        let response = send(&app, Method::GET, path).await;

        // Assert
        assert_eq!(response.status(), 404, "{path}");
        assert!(header(&response, "allow").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn an_authorization_request_whose_state_is_not_utf8_gets_a_page_not_a_redirect() {
    // Arrange: %FF is not UTF-8; replacing it with U+FFFD would change the app's state.
    let app = spawn_app().await;
    let url = format!(
        "{}/authorize?client_id={APP}&redirect_uri={}&response_type=code&scope=openid&state=%FF",
        app.address,
        url::form_urlencoded::byte_serialize(APP_REDIRECT.as_bytes()).collect::<String>()
    );

    // Act
    let response = app.http.get(url).send().await.unwrap();

    // Assert
    assert!(header(&response, "location").is_empty(), "no redirect");
    assert_page(response, 400, "state=%FF").await;
}

#[tokio::test]
async fn app_endpoint_parameters_that_are_not_utf8_are_invalid_request() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let token = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(APP, Some(APP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=abc%C3&redirect_uri=x")
        .send()
        .await
        .unwrap();
    let userinfo = app
        .http
        .get(format!("{}/userinfo?claims=%E9", app.address))
        .bearer_auth("whatever")
        .send()
        .await
        .unwrap();
    let revoke = app
        .http
        .post(format!("{}/revoke", app.address))
        .basic_auth(APP, Some(APP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=%FF%FE")
        .send()
        .await
        .unwrap();

    // Assert
    assert_invalid_request(token, 400, "/token code=abc%C3").await;
    assert_invalid_request(userinfo, 400, "/userinfo ?claims=%E9").await;
    assert_invalid_request(revoke, 400, "/revoke token=%FF%FE").await;
}

#[tokio::test]
async fn a_logout_form_that_is_not_utf8_gets_a_page() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .http
        .post(format!("{}/logout", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=app&state=%C3%28")
        .send()
        .await
        .unwrap();

    // Assert
    assert_page(response, 400, "state=%C3%28").await;
}

#[tokio::test]
async fn an_oversized_query_gets_a_readable_414_page() {
    // Arrange: a state as long as the whole query may be.
    let app = spawn_app().await;
    let state = "s".repeat(MAX_QUERY_BYTES);
    let url = app.authorize_url(APP, APP_REDIRECT, &[("state", &state)]);

    // Act
    let response = app.http.get(url).send().await.unwrap();

    // Assert
    assert!(header(&response, "location").is_empty(), "no redirect");
    assert_page(response, 414, "a query over 8 KiB").await;
}

#[tokio::test]
async fn an_oversized_query_at_an_app_endpoint_is_invalid_request() {
    // Arrange
    let app = spawn_app().await;
    let path = format!("/userinfo?claims={}", "c".repeat(MAX_QUERY_BYTES));

    // Act
    let response = send(&app, Method::GET, &path).await;

    // Assert
    assert_invalid_request(response, 414, "a query over 8 KiB").await;
}

#[tokio::test]
async fn an_oversized_state_in_a_posted_authorization_request_gets_a_readable_page() {
    // Arrange
    let app = spawn_app().await;
    let state = "s".repeat(9 * 1024);

    // Act
    let response = app
        .http
        .post(format!("{}/authorize", app.address))
        .form(&[
            ("client_id", APP),
            ("redirect_uri", APP_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", state.as_str()),
        ])
        .send()
        .await
        .unwrap();

    // Assert
    assert!(header(&response, "location").is_empty(), "not echoed back");
    assert_page(response, 400, "a 9 KiB state").await;
}

#[tokio::test]
async fn a_form_body_over_64_kib_is_refused_with_413() {
    // Arrange
    let app = spawn_app().await;
    let padding = "p".repeat(MAX_FORM_BYTES);

    // Act
    let token = app
        .token(
            Some((APP, APP_SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &padding)],
        )
        .await;
    let consent = app
        .http
        .post(format!("{}/consent", app.address))
        .form(&[("ticket", padding.as_str())])
        .send()
        .await
        .unwrap();

    // Assert
    assert_invalid_request(token, 413, "/token with a 64 KiB value").await;
    assert_page(consent, 413, "/consent with a 64 KiB value").await;
}
