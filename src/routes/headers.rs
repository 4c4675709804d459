//! Security headers, set in one place on every answer guildgate gives.
//!
//! - Every answer: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
//!   `Cache-Control: no-store` unless the handler chose a cache policy (discovery and JWKS are
//!   the only cacheable documents); `Strict-Transport-Security` when the issuer is https.
//! - HTML pages: a Content-Security-Policy that allows nothing but the pages' one stylesheet,
//!   named by its SHA-256 (no `unsafe-inline`, no scripts), with `frame-ancestors 'none'`, and
//!   `X-Frame-Options: DENY` for older browsers: no page of ours can be framed (clickjacking on
//!   the consent and logout forms). `form-action` is left out on purpose: browsers apply it to
//!   the redirect that follows a form post, which would block the return to the app.

use crate::state::AppState;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The base template, whose one `<style>` element every page carries.
const BASE_TEMPLATE: &str = include_str!("../../templates/base.html");

/// The page policy: the stylesheet's hash, Discord avatars, nothing else.
static PAGE_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = style_hash(BASE_TEMPLATE).unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src {style}; img-src 'self' https://cdn.discordapp.com; \
         base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ))
});

/// `'sha256-…'` of the text inside the template's `<style>` element (CSP Level 2 §4.2.4).
pub fn style_hash(html: &str) -> Option<String> {
    let start = html.find("<style>")? + "<style>".len();
    let end = start + html[start..].find("</style>")?;
    Some(format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(&html.as_bytes()[start..end]))
    ))
}

/// The middleware: lets the request through, then adds the headers to whatever answered.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config().issuer.is_https());
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, PAGE_POLICY.clone());
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if https {
        // Two years, the preload list's minimum; subdomains are the operator's to decide.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_style_hash_covers_exactly_the_style_elements_text() {
        let html = "<head><style>\n  body { margin: 0 }\n</style></head>";
        let expected = format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(b"\n  body { margin: 0 }\n"))
        );
        assert_eq!(style_hash(html), Some(expected));
        assert_eq!(style_hash("<p>no style</p>"), None);
        assert!(
            style_hash(BASE_TEMPLATE).is_some(),
            "the base template has its stylesheet"
        );
    }
}
