//! Pushed authorization requests (RFC 9126): `POST /par` validates an app's authorization
//! request and stores it behind a one-time `request_uri`; `/authorize` takes it back.

use super::Context;
use super::authorize::{self, AuthorizeError};
use crate::config::ValidClient;
use crate::domain::{Jkt, OpaqueToken, TokenHash};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::PushedRequest;
use serde::Serialize;
use time::OffsetDateTime;

/// RFC 9126 §2.2: what a `request_uri` we hand out starts with.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The `/par` answer (RFC 9126 §2.2), sent with 201 Created.
#[derive(Debug, Serialize)]
pub struct PushedResponse {
    /// The one-time reference to the stored request.
    pub request_uri: String,
    /// Seconds until it is refused.
    pub expires_in: u64,
}

/// The parameters `/authorize` works with.
#[derive(Debug)]
pub enum Parameters {
    /// The request's own (no `request_uri`).
    Direct,
    /// Those pushed under its `request_uri`, now spent.
    Pushed(Vec<(String, String)>),
    /// A `request_uri` that is unknown, expired, spent, another client's, or without
    /// `client_id`: there is no verified redirect URI to send an error to.
    Unusable,
}

/// Validates and stores `client`'s authorization request (its parameters, client
/// authentication already removed). `proof` is the key of the request's DPoP proof, which binds
/// the code as `dpop_jkt` does (RFC 9449 §10.1). Errors are the token endpoint's JSON
/// (RFC 9126 §2.3).
pub async fn push(
    ctx: &Context<'_>,
    client: &ValidClient,
    mut params: Vec<(String, String)>,
    proof: Option<Jkt>,
    now: OffsetDateTime,
) -> Result<PushedResponse, OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidRequest, why);
    if let Some(key) = proof {
        match params.iter().find(|(k, _)| k == "dpop_jkt") {
            Some((_, named)) if named != key.as_str() => {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidDpopProof,
                    "the DPoP proof's key is not the one dpop_jkt names",
                ));
            }
            Some(_) => {}
            None => params.push(("dpop_jkt".to_owned(), key.as_str().to_owned())),
        }
    }
    // RFC 9126 §2.1: a pushed request cannot itself point elsewhere.
    if params.iter().any(|(k, _)| k == "request_uri") {
        return Err(invalid("request_uri cannot be pushed"));
    }
    match params
        .iter()
        .filter(|(k, _)| k == "client_id")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => params.push(("client_id".to_owned(), client.id.as_str().to_owned())),
        [id] if *id == client.id.as_str() => {}
        _ => return Err(invalid("client_id does not name the authenticated client")),
    }
    let issuer = ctx.config.issuer.as_str();
    match authorize::validate(&params, &ctx.clients, ctx.keys, issuer, true) {
        Ok(_) => {}
        Err(AuthorizeError::Page { message, .. }) => return Err(invalid(message)),
        Err(AuthorizeError::Redirect { error, .. }) => return Err(error),
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", OpaqueToken::generate().expose());
    let ttl = ctx.config.lifetimes.request_uri;
    let stored = PushedRequest {
        request_uri_hash: TokenHash::of(&request_uri),
        client_id: client.id.clone(),
        request: serde_json::to_string(&params).map_err(OAuthError::internal)?,
        created_at: now,
        expires_at: now + ttl,
    };
    ctx.store.insert_pushed_request(&stored).await?;
    ctx.metrics.pushed_request();
    Ok(PushedResponse {
        request_uri,
        expires_in: ttl.as_secs(),
    })
}

/// The parameters of an `/authorize` request: its own, or (spending it) the request pushed
/// under its `request_uri`. RFC 9126 §4: only `client_id` and `request_uri` are read then;
/// anything else sent beside them is ignored.
pub async fn resolve(
    ctx: &Context<'_>,
    params: &[(String, String)],
    now: OffsetDateTime,
) -> Result<Parameters, OAuthError> {
    let value = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    // A request_uri that is not ours is a request object by reference, which `validate`
    // refuses (`request_uri_not_supported`) without fetching it.
    let Some(request_uri) = value("request_uri").filter(|u| u.starts_with(REQUEST_URI_PREFIX))
    else {
        return Ok(Parameters::Direct);
    };
    let Some(client_id) = value("client_id").and_then(|id| ctx.clients.get(id)) else {
        return Ok(Parameters::Unusable);
    };
    let taken = ctx
        .store
        .take_pushed_request(&TokenHash::of(request_uri), &client_id.id, now)
        .await?;
    let Some(taken) = taken else {
        tracing::info!(client_id = %client_id.id, "request_uri unknown, expired or already used");
        return Ok(Parameters::Unusable);
    };
    match serde_json::from_str(&taken.request) {
        Ok(pushed) => Ok(Parameters::Pushed(pushed)),
        Err(e) => Err(OAuthError::internal(anyhow::anyhow!(
            "a stored pushed request does not read back: {e}"
        ))),
    }
}
