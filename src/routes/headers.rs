//! Security headers, set in one place on every answer guildgate gives.
//!
//! - Every answer: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
//!   `Cache-Control: no-store` unless the handler chose a cache policy (discovery and JWKS are
//!   the only cacheable documents); `Strict-Transport-Security` when the issuer is https.
//! - HTML pages: a Content-Security-Policy that allows nothing but the pages' one stylesheet,
//!   named by its SHA-256 (no `unsafe-inline`, no scripts), images from us, Discord's avatar
//!   CDN and the `[ui]` logo's origin (see [`crate::pages::Pages`]), `frame-ancestors 'none'`, and
//!   `X-Frame-Options: DENY` for older browsers: no page of ours can be framed (clickjacking on
//!   the consent and logout forms). `form-action` is left out on purpose: browsers apply it to
//!   the redirect that follows a form post, which would block the return to the app.

use crate::pages::Pages;
use crate::state::AppState;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::Arc;

/// The middleware alone, for the metrics listener; the app's requests get the same headers
/// from [`super::around::every_request`].
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let (https, pages) = for_app(req.app_data::<web::Data<AppState>>());
    // Handlers render pages inside this scope, so they carry this app's branding.
    let mut response = pages.clone().scope(next.call(req)).await?;
    add(response.headers_mut(), https, &pages);
    Ok(response)
}

/// What the headers depend on: whether the issuer is https, and the app's page set (the
/// built-in pages for an app without state).
pub(super) fn for_app(state: Option<&web::Data<AppState>>) -> (bool, Arc<Pages>) {
    match state {
        Some(state) => (state.https, state.pages.clone()),
        None => (false, Pages::built_in()),
    }
}

/// Adds the headers to an answer: `https` when the issuer is (HSTS), `pages` for the
/// Content-Security-Policy of an HTML page.
pub(super) fn add(headers: &mut HeaderMap, https: bool, pages: &Pages) {
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
    // A page with a policy of its own (the form_post page, which runs one script) keeps it.
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = HeaderValue::from_str(pages.content_security_policy()).unwrap_or(
            HeaderValue::from_static("default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
        );
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if html {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if https {
        // Two years, the preload list's minimum; subdomains are the operator's to decide.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000"),
        );
    }
}
