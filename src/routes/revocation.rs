//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662).

use super::client_auth::authenticated_form;
use super::form;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows::revocation;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, post, web};

/// Mounts revocation and introspection.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(revoke).service(introspect);
}

fn token_param(params: &form::FormParams) -> Result<&str, OAuthError> {
    params
        .get("token")
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "token is required"))
}

#[post("/revoke")]
#[tracing::instrument(skip_all, fields(client_id))]
async fn revoke(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (params, client) = authenticated_form(&req, &body, &state, "/revoke").await?;
    // token_type_hint is only a hint (RFC 7009 §2.1): both kinds are tried regardless.
    revocation::revoke(
        &super::flow_context(&state, &req),
        &client,
        token_param(&params)?,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[post("/introspect")]
#[tracing::instrument(skip_all, fields(client_id))]
async fn introspect(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (params, client) = authenticated_form(&req, &body, &state, "/introspect").await?;
    let answer = revocation::introspect(
        &state.context(),
        &client,
        token_param(&params)?,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
