//! The outermost middleware: what every answer of the app needs, in one layer.
//!
//! A request is counted in flight (a graceful stop waits for it), timed and counted by route
//! and status (`guildgate_http_requests_total`, `guildgate_http_request_duration_seconds`,
//! refusals at the edge included), and its answer gets the security headers
//! ([`super::headers`]). One layer rather than three: every actix layer costs a boxed future
//! and a state lookup per request, which discovery and JWKS, answered from memory, notice.

use super::{headers, metrics};
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use std::time::Instant;

/// The middleware (mounted last, so actix runs it first).
pub async fn every_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let _serving = state.as_ref().map(|s| s.in_flight.enter());
    let (https, pages) = headers::for_app(state.as_ref());
    let started = Instant::now();
    let route = metrics::route_label(req.path());
    // Handlers render pages inside this scope, so they carry this app's branding.
    let result = pages.clone().scope(next.call(req)).await;
    if let Some(state) = &state {
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        state
            .metrics
            .http_request(route, status.as_u16(), started.elapsed());
    }
    let mut response = result?;
    headers::add(response.headers_mut(), https, &pages);
    Ok(response)
}
