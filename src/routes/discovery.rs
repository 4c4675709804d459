//! `/.well-known/openid-configuration` and `/jwks.json`, both served from bytes built when the
//! configuration (or the key set) was put in force.

use crate::state::AppState;
use actix_web::{HttpResponse, get, web};

/// Mounts discovery and JWKS.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openid_configuration).service(jwks);
}

#[get("/.well-known/openid-configuration")]
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(state.live().discovery.clone())
}

#[get("/jwks.json")]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // Short enough that a key pre-published at rotation reaches every RP cache before it signs.
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(state.keys.jwks_json())
}
