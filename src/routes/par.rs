//! `POST /par` (RFC 9126): client authentication, then the pushed request's flow.

use super::client_auth::authenticated_form;
use crate::error::OAuthError;
use crate::flows::dpop::{self, ProofRequest};
use crate::flows::pushed;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, post, web};

/// Mounts the pushed authorization request endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(par);
}

/// The client's credentials, which are not part of the authorization request it pushes.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

#[post("/par")]
#[tracing::instrument(skip_all, fields(client_id))]
async fn par(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (params, client) = authenticated_form(&req, &body, &state, "/par").await?;
    let ctx = super::flow_context(&state, &req);
    let now = state.clock.now();
    // RFC 9449 §10.1: a DPoP proof sent with the pushed request binds its code to that key,
    // as `dpop_jkt` would.
    let headers = super::dpop_headers(&req);
    let proof = dpop::check(
        &ctx,
        ProofRequest {
            headers: &headers,
            method: "POST",
            path: "/par",
            access_token: None,
            at_resource: false,
            client_id: Some(client.id.as_str()),
        },
        now,
    )
    .await?;
    let pushed = pushed::push(
        &ctx,
        &client,
        params.pairs_without(&CREDENTIALS),
        proof,
        now,
    )
    .await?;
    // RFC 9126 §2.2: 201 Created.
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pushed))
}
