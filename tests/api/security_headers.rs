//! Security headers on every answer, set in one place: pages cannot be framed and run nothing
//! but their own stylesheet; nothing is cached unless it is meant to be; HSTS on https.

use crate::helpers::{spawn_app, spawn_app_as};
use sha2::{Digest, Sha256};

/// `'sha256-…'` of a page's inline stylesheet, as a browser computes it for CSP.
fn style_hash_of(body: &str) -> String {
    let start = body.find("<style>").expect("a stylesheet") + "<style>".len();
    let end = start + body[start..].find("</style>").expect("closed");
    use base64::Engine;
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(&body.as_bytes()[start..end]))
    )
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_cannot_be_framed_and_allow_only_their_own_stylesheet() {
    // Arrange
    let app = spawn_app().await;

    // Act: a page (an unknown app at /authorize).
    let page = app.get("/authorize?client_id=nobody&redirect_uri=x").await;

    // Assert
    assert_eq!(page.status(), 400);
    let csp = header(&page, "content-security-policy");
    let (xfo, nosniff, referrer, cache) = (
        header(&page, "x-frame-options"),
        header(&page, "x-content-type-options"),
        header(&page, "referrer-policy"),
        header(&page, "cache-control"),
    );
    let body = page.text().await.unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(
        csp.contains(&style_hash_of(&body)),
        "the page's stylesheet is the one the policy allows: {csp}"
    );
    assert_eq!(xfo, "DENY");
    assert_eq!(nosniff, "nosniff");
    assert_eq!(referrer, "no-referrer");
    assert_eq!(cache, "no-store");
}

#[tokio::test]
async fn json_answers_are_not_cached_or_sniffed_and_public_documents_keep_their_cache() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let error = app
        .http
        .post(format!("{}/token", app.address))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let discovery = app.get("/.well-known/openid-configuration").await;

    // Assert
    assert_eq!(header(&error, "cache-control"), "no-store");
    assert_eq!(header(&error, "x-content-type-options"), "nosniff");
    assert!(
        header(&error, "content-security-policy").is_empty(),
        "pages only"
    );
    assert!(
        header(&discovery, "cache-control").contains("max-age"),
        "discovery stays cacheable"
    );
    assert_eq!(header(&discovery, "x-content-type-options"), "nosniff");
    assert!(
        header(&discovery, "strict-transport-security").is_empty(),
        "no HSTS for an http issuer"
    );
}

#[tokio::test]
async fn an_https_issuer_sends_strict_transport_security() {
    // Arrange
    let app = spawn_app_as("https", "").await;

    // Act
    let response = app.get("/healthz").await;

    // Assert
    assert!(
        header(&response, "strict-transport-security").starts_with("max-age="),
        "{:?}",
        response.headers()
    );
}
