//! HTTP routes: thin handlers that extract, parse, call one flow and render. The mount list.

mod account;
mod around;
mod authorize;
mod callback;
mod client_auth;
mod consent;
mod cookies;
mod device;
mod device_pages;
mod discovery;
mod edges;
mod form;
mod headers;
mod health;
mod logout;
mod metrics;
mod par;
mod respond;
mod revocation;
mod token;
mod userinfo;

pub use around::every_request;
pub use edges::{
    Audience, CrossOrigin, ENDPOINTS, Endpoint, MAX_FORM_BYTES, MAX_QUERY_BYTES, MAX_VALUE_BYTES,
    edge_checks, endpoint_at,
};
pub use headers::security_headers;
pub use health::configure_starting;
pub use metrics::{METRICS_PATH, configure as configure_metrics, route_label};

use crate::audit::RequestInfo;
use crate::error::PageError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

/// Mounts every endpoint family.
pub fn configure(cfg: &mut web::ServiceConfig) {
    discovery::configure(cfg);
    account::configure(cfg);
    authorize::configure(cfg);
    callback::configure(cfg);
    consent::configure(cfg);
    token::configure(cfg);
    par::configure(cfg);
    device::configure(cfg);
    userinfo::configure(cfg);
    revocation::configure(cfg);
    logout::configure(cfg);
    health::configure(cfg);
    // A mounted path with the wrong method is 405 with `Allow`; an unknown path is 404.
    cfg.default_service(web::to(edges::not_routed));
}

/// The flows' context for this request: audit lines get its request id (the request span's)
/// and source address.
fn flow_context<'a>(state: &'a AppState, req: &HttpRequest) -> crate::flows::Context<'a> {
    state.context().with_request(RequestInfo {
        request_id: req
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| **id),
        source_ip: Some(client_auth::source_address(req)),
    })
}

/// The request's `DPoP` header values (RFC 9449 §4.1); one that is not visible ASCII reads as
/// empty, which no proof check accepts.
fn dpop_headers(req: &HttpRequest) -> Vec<&str> {
    req.headers()
        .get_all("dpop")
        .map(|v| v.to_str().unwrap_or_default())
        .collect()
}

/// A readable HTML page for a person.
fn page(status: StatusCode, title: &'static str, message: &'static str) -> HttpResponse {
    PageError::new(status, title, message).error_response()
}

/// The page for a request that failed inside guildgate (see [`PageError::failure`]).
fn failure_page(temporary: bool, message: &'static str) -> HttpResponse {
    PageError::failure(temporary, message).error_response()
}

/// Discord is rate limiting us beyond what a person should wait: 503 with `Retry-After` (RFC 9110
/// §15.6.4, §10.2.3; whole seconds, at least 1) and a link that tells the app
/// `temporarily_unavailable`.
fn upstream_busy(
    redirect: &crate::flows::response::AuthorizationResponse,
    retry_after: std::time::Duration,
) -> HttpResponse {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let message = format!(
        "Discord is limiting how fast people can sign in right now. Please try again in {}.",
        if seconds == 1 {
            "a second".to_owned()
        } else if seconds < 120 {
            format!("{seconds} seconds")
        } else {
            format!("{} minutes", seconds.div_ceil(60))
        }
    );
    let mut href = String::new();
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(crate::pages::message_page_with_link(
            "Discord is busy",
            &message,
            respond::back_link(redirect, &mut href),
        ))
}
