//! `/healthz` (the process answers) and `/readyz` (the store answers), also while starting.

use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use std::time::Duration;

/// A readiness probe gets its answer within this, even when the database hangs: orchestrators
/// time probes out after about a second, and an answer says more than a timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Mounts the health endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

/// Mounts what answers while start-up waits for the database: alive, not ready, and a 503
/// with `Retry-After` for every other path.
pub fn configure_starting(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz)
        .route("/readyz", web::get().to(readyz_starting))
        .default_service(web::to(starting));
}

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "status": "ok" }))
}

#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ping = tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await;
    match ping {
        Ok(Ok(())) => {
            let mut body = serde_json::json!({ "status": "ready" });
            // Detail, not readiness: sign-ins never depend on the Gateway connection.
            if state.config().bot.is_some() {
                body["live_membership"] = serde_json::json!(state.gateway.snapshot());
            }
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(body)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("database is not answering")
        }
        Err(_elapsed) => {
            tracing::warn!(
                timeout_s = READY_TIMEOUT.as_secs(),
                "readiness check failed: the database did not answer in time"
            );
            unavailable("database is not answering")
        }
    }
}

async fn readyz_starting() -> HttpResponse {
    unavailable("starting: waiting for the database")
}

/// Any other request while starting. RFC 9110 §15.6.4: 503 with `Retry-After` for a
/// temporary condition; the body is an OAuth2-shaped error so clients can parse it.
async fn starting() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Retry-After", "2"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "guildgate is starting: waiting for its database",
        }))
}

fn unavailable(reason: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "status": "unavailable", "reason": reason }))
}
