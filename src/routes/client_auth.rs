//! Client authentication for the endpoints apps call with their credentials (token, revoke,
//! introspect, PAR, device authorization), and the source address limits are counted under.
//! Not an endpoint.

use super::form;
use crate::clients::{Audience, AuthAttempt, ClientAuthError, ClientCredentials, PresentedParts};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::Bytes;
use std::net::IpAddr;

/// Parses the form and authenticates the client of a token-endpoint-style request at
/// `endpoint` (its mounted path: a client assertion's `aud` may name it).
pub async fn authenticated_form(
    req: &HttpRequest,
    body: &Bytes,
    state: &AppState,
    endpoint: &str,
) -> Result<(form::FormParams, std::sync::Arc<crate::config::ValidClient>), OAuthError> {
    let params = form::parse(req, body)?;
    let client = authenticate(req, &params, state, endpoint).await?;
    // Counted once the client is known to be who it says (strangers cannot spend an app's
    // budget) and before the grant's flow runs: a refused refresh keeps its refresh token.
    if let Err(wait) = state.limiters.client(
        client.id.as_str(),
        &state.config().limits,
        state.clock.now(),
    ) {
        tracing::warn!(
            retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "request refused: the client is over limits.token_per_client"
        );
        return Err(OAuthError::rate_limited(
            "too many requests from this client; retry later",
            wait,
        ));
    }
    Ok((params, client))
}

async fn authenticate(
    req: &HttpRequest,
    params: &form::FormParams,
    state: &AppState,
    endpoint: &str,
) -> Result<std::sync::Arc<crate::config::ValidClient>, OAuthError> {
    // A header that is not visible ASCII is still an attempt at client authentication: it
    // reads as empty, which fails as malformed credentials rather than being ignored.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let credentials = ClientCredentials::read(PresentedParts {
        authorization,
        client_id: params.get("client_id"),
        client_secret: params.get("client_secret"),
        assertion_type: params.get("client_assertion_type"),
        assertion: params.get("client_assertion"),
    })
    .map_err(client_error)?;
    tracing::Span::current().record("client_id", credentials.id());
    let config = state.config();
    let attempt = AuthAttempt {
        source: source_address(req),
        limits: config.limits,
        now: state.clock.now(),
    };
    // The audiences an assertion may name, spelled out only for a request that has one.
    let issuer = &config.issuer;
    let (endpoint_url, token_endpoint) = match credentials {
        ClientCredentials::Assertion { .. } => {
            (issuer.endpoint(endpoint), issuer.endpoint("/token"))
        }
        _ => (String::new(), String::new()),
    };
    let audience = Audience {
        issuer: issuer.as_str(),
        endpoint: &endpoint_url,
        token_endpoint: &token_endpoint,
    };
    let authenticated = state
        .clients()
        .authenticate(credentials, attempt, audience)
        .await
        .map_err(client_error)?;
    if let Some(used) = &authenticated.assertion {
        let ctx = super::flow_context(state, req);
        crate::flows::client_auth::spend_assertion(&ctx, &authenticated.client, used).await?;
    }
    Ok(authenticated.client)
}

/// The address limits are counted under and logs name: the TCP peer, or behind a trusted
/// proxy (`server.trusted_proxies`) the client it forwarded for (see [`crate::client_ip`]).
pub(super) fn source_address(req: &HttpRequest) -> IpAddr {
    crate::client_ip::resolve(
        req.peer_addr(),
        req.headers(),
        req.app_data::<crate::client_ip::TrustedProxies>(),
    )
}

fn client_error(e: ClientAuthError) -> OAuthError {
    match e {
        ClientAuthError::Malformed(why) => OAuthError::new(OAuthErrorCode::InvalidRequest, why),
        // RFC 6749 §5.2: a failed client authentication, however it failed, is 401
        // invalid_client with a WWW-Authenticate challenge.
        ClientAuthError::BadHeader(why) => OAuthError::new(OAuthErrorCode::InvalidClient, why),
        ClientAuthError::Failed => OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        ),
        ClientAuthError::TooManyFailures { retry_after } => {
            tracing::warn!(
                retry_after_secs = retry_after.as_secs(),
                "client authentication refused: too many failed attempts"
            );
            OAuthError::rate_limited("too many failed attempts; retry later", retry_after)
        }
    }
}
