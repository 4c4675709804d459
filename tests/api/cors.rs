//! CORS: browser apps at registered origins may call the token endpoint; others get nothing.

use crate::helpers::spawn_app;

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
