//! `POST /token`: client authentication, the request's DPoP proof, then the grant's flow.

use super::client_auth::authenticated_form;
use super::form::FormParams;
use crate::config::ValidClient;
use crate::domain::Jkt;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::flows::code::{self, CodeGrant};
use crate::flows::dpop::{self, ProofRequest};
use crate::flows::grant::TokenResponse;
use crate::flows::{Context, client_credentials, device, refresh};
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
    let (response, nonce) = result?;
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(nonce) = nonce {
        answer.insert_header(("DPoP-Nonce", nonce));
    }
    Ok(answer.json(response))
}

/// Authenticates the client, checks the DPoP proof and runs the grant, naming the grant type
/// in `label` (a fixed set, for the metrics) as soon as it is known; with the response, the
/// DPoP nonce to send when nonces are required.
async fn grant(
    req: &HttpRequest,
    body: &Bytes,
    state: &AppState,
    label: &mut &'static str,
) -> Result<(TokenResponse, Option<String>), OAuthError> {
    let (params, client) = authenticated_form(req, body, state, "/token").await?;
    let grant_type = params.get("grant_type").unwrap_or_default();
    tracing::Span::current().record("grant_type", grant_type);
    let now = state.clock.now();
    let ctx = super::flow_context(state, req);
    if grant_type.is_empty() {
        return Err(missing("grant_type"));
    }
    *label = label_of(grant_type);
    if *label == "other" {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "supported grant types: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code",
        ));
    }
    let headers = super::dpop_headers(req);
    let proof = dpop::check(
        &ctx,
        ProofRequest {
            headers: &headers,
            method: "POST",
            path: "/token",
            access_token: None,
            at_resource: false,
            client_id: Some(client.id.as_str()),
        },
        now,
    )
    .await?;
    // RFC 9449 §5.2: a client registered for bound tokens gets none without a proof.
    if client.dpop_bound && proof.is_none() {
        return Err(dpop::required());
    }
    let response = run(&ctx, &client, &params, grant_type, proof.as_ref(), now).await?;
    Ok((response, dpop::fresh_nonce(&ctx, now)))
}

/// The grant's flow, by `grant_type`.
async fn run(
    ctx: &Context<'_>,
    client: &ValidClient,
    params: &FormParams,
    grant_type: &str,
    proof: Option<&Jkt>,
    now: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    match grant_type {
        "authorization_code" => {
            let grant = CodeGrant {
                code: params.get("code").ok_or_else(|| missing("code"))?,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
            };
            code::redeem(ctx, client, grant, proof, now).await
        }
        "refresh_token" => {
            let presented = params
                .get("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            refresh::refresh(ctx, client, presented, params.get("scope"), proof, now).await
        }
        "client_credentials" => {
            client_credentials::issue(ctx, client, params.get("scope"), proof, now).await
        }
        device::GRANT_TYPE => {
            let device_code = params
                .get("device_code")
                .ok_or_else(|| missing("device_code"))?;
            device::poll(ctx, client, device_code, proof, now).await
        }
        _ => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "unsupported grant type",
        )),
    }
}

/// The metrics label of a grant type (a closed set).
fn label_of(grant_type: &str) -> &'static str {
    match grant_type {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        "client_credentials" => "client_credentials",
        device::GRANT_TYPE => "device_code",
        _ => "other",
    }
}

fn missing(name: &'static str) -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidRequest,
        match name {
            "code" => "code is required",
            "grant_type" => "grant_type is required",
            "refresh_token" => "refresh_token is required",
            "device_code" => "device_code is required",
            _ => "a required parameter is missing",
        },
    )
}
