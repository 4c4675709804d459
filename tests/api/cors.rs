//! CORS: browser apps at registered origins may fetch the token, userinfo, revocation and
//! introspection endpoints; discovery and JWKS are public; pages never answer cross-origin.

use crate::helpers::{APP, APP_REDIRECT, spawn_app};

#[tokio::test]
async fn browser_apps_at_registered_origins_may_call_the_token_endpoint_and_others_may_not() {
    // Arrange
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/token", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    // Act
    let registered = preflight("https://app.example.com").await.unwrap();
    let stranger = preflight("https://evil.example").await.unwrap();

    // Assert
    assert_eq!(
        registered
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example.com")
    );
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(
        registered
            .headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "no cookies cross-origin"
    );
}

fn allow_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn browser_pages_never_carry_cors_headers_even_for_registered_origins() {
    // Arrange: a registered app origin, on the endpoints people navigate to.
    let app = spawn_app().await;
    let origin = "https://app.example.com";
    let authorize = app.authorize_url(APP, APP_REDIRECT, &[("state", "s")]);
    let requests = [
        app.http.get(&authorize),
        app.http.get(format!("{}/logout", app.address)),
        app.http
            .get(format!("{}/callback/discord?code=c&state=s", app.address)),
        app.http
            .post(format!("{}/consent", app.address))
            .form(&[("answer", "allow")]),
        app.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/authorize", app.address),
            )
            .header("access-control-request-method", "POST"),
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/logout", app.address))
            .header("access-control-request-method", "GET"),
    ];

    for request in requests {
        // Act
        let response = request.header("origin", origin).send().await.unwrap();

        // Assert
        assert_eq!(
            allow_origin(&response),
            None,
            "{} must not be readable cross-origin",
            response.url().path()
        );
    }
}

#[tokio::test]
async fn the_endpoints_browser_apps_fetch_answer_registered_origins() {
    // Arrange
    let app = spawn_app().await;
    let origin = "https://app.example.com";

    for path in ["/token", "/userinfo", "/revoke", "/introspect"] {
        // Act: the preflight, then the request itself (refused, but readable by the app).
        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        let actual = app
            .http
            .post(format!("{}{path}", app.address))
            .header("origin", origin)
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();

        // Assert
        assert_eq!(allow_origin(&preflight).as_deref(), Some(origin), "{path}");
        assert_eq!(allow_origin(&actual).as_deref(), Some(origin), "{path}");
    }
}

#[tokio::test]
async fn discovery_and_jwks_are_readable_from_any_origin() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/.well-known/openid-configuration", "/jwks.json"] {
        for origin in ["https://app.example.com", "https://anyone.example"] {
            // Act
            let response = app
                .http
                .get(format!("{}{path}", app.address))
                .header("origin", origin)
                .send()
                .await
                .unwrap();

            // Assert: public documents, no credentials.
            assert_eq!(
                allow_origin(&response).as_deref(),
                Some("*"),
                "{path} {origin}"
            );
            assert!(
                response
                    .headers()
                    .get("access-control-allow-credentials")
                    .is_none()
            );
        }
    }
}
