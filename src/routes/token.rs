//! `POST /token`: client authentication, then the grant's flow.

use super::client_auth::authenticated_form;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows::code::{self, CodeGrant};
use crate::flows::grant::TokenResponse;
use crate::flows::refresh;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, post, web};

/// Mounts the token endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(token);
}

#[post("/token")]
#[tracing::instrument(skip_all, fields(client_id, grant_type))]
async fn token(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let mut grant_type = "unknown";
    let result = grant(&req, &body, &state, &mut grant_type).await;
    state.metrics.token_grant(
        grant_type,
        match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        },
    );
    let response = result?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response))
}

/// Authenticates the client and runs the grant, naming the grant type in `label` (a fixed
/// set, for the metrics) as soon as it is known.
async fn grant(
    req: &HttpRequest,
    body: &Bytes,
    state: &AppState,
    label: &mut &'static str,
) -> Result<TokenResponse, OAuthError> {
    let (params, client) = authenticated_form(req, body, state).await?;
    let grant_type = params.get("grant_type").unwrap_or_default();
    tracing::Span::current().record("grant_type", grant_type);
    let now = state.clock.now();
    let ctx = super::flow_context(state, req);
    match grant_type {
        "authorization_code" => {
            *label = "authorization_code";
            let grant = CodeGrant {
                code: params.get("code").ok_or_else(|| missing("code"))?,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
            };
            code::redeem(&ctx, &client, grant, now).await
        }
        "refresh_token" => {
            *label = "refresh_token";
            let presented = params
                .get("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            refresh::refresh(&ctx, &client, presented, params.get("scope"), now).await
        }
        "" => Err(missing("grant_type")),
        _ => {
            *label = "other";
            Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "supported grant types: authorization_code, refresh_token",
            ))
        }
    }
}

fn missing(name: &'static str) -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidRequest,
        match name {
            "code" => "code is required",
            "grant_type" => "grant_type is required",
            "refresh_token" => "refresh_token is required",
            _ => "a required parameter is missing",
        },
    )
}
