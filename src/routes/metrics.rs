//! `GET /metrics` (the Prometheus scrape) and the route label every HTTP answer is counted under
//! (by [`super::around::every_request`]).
//!
//! The scrape is served on the main listener, or only on `server.metrics_listen` when that is
//! set (see `startup.rs`). The store-backed gauges are read here, at scrape time, so no
//! request path pays for them.

use crate::metrics::{CONTENT_TYPE, Scraped};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use std::time::Duration;

/// The scrape answers within this even when the database hangs (store gauges keep their last
/// value then): Prometheus' default scrape timeout is 10 s.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The route label of paths that are not mounted (scanners, typos): one series for all of them.
const UNMATCHED: &str = "unmatched";
/// The scrape's own path.
pub const METRICS_PATH: &str = "/metrics";

/// Mounts `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(METRICS_PATH)
            .route(web::get().to(scrape))
            .route(web::head().to(scrape)),
    );
}

/// The route label: the mounted path (from the endpoint table), never the raw one, so the
/// label's values are a closed set whatever paths clients send.
pub fn route_label(path: &str) -> &'static str {
    match super::endpoint_at(path) {
        Some(endpoint) => endpoint.path,
        None if path == METRICS_PATH => METRICS_PATH,
        None => UNMATCHED,
    }
}

/// The scrape: reads the store-backed values, then encodes every metric.
async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let (queue, sessions) = tokio::join!(
        tokio::time::timeout(STORE_TIMEOUT, state.store.logout_queue_depth()),
        tokio::time::timeout(STORE_TIMEOUT, state.store.count_live_sessions(now)),
    );
    let read = |what: &'static str, value: Result<Result<u64, _>, _>| match value {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, what, "metrics: cannot read from the database");
            None
        }
        Err(_elapsed) => {
            tracing::warn!(what, "metrics: the database did not answer in time");
            None
        }
    };
    let pool = state.store.pool_usage();
    state.metrics.set_scraped(&Scraped {
        backchannel_queue: read("back-channel logout queue", queue),
        sessions_live: read("live sessions", sessions),
        pool_size: pool.size,
        pool_idle: pool.idle,
        signing_key_age_secs: (now - state.keys.active().activates_at)
            .whole_seconds()
            .max(0),
    });
    if state.config().bot.is_some() {
        state.metrics.set_live(&state.gateway.snapshot());
    }
    match state.metrics.encode() {
        Ok(body) => HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot encode the scrape");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_mounted_path_only() {
        assert_eq!(route_label("/token"), "/token");
        assert_eq!(route_label("/metrics"), "/metrics");
        assert_eq!(route_label("/wp-login.php"), UNMATCHED);
        assert_eq!(route_label("/token/../../etc"), UNMATCHED);
    }
}
