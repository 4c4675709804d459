//! Client authentication for the endpoints apps call with their credentials (token, revoke,
//! introspect), and the source address limits are counted under. Not an endpoint.

use super::form;
use crate::clients::{AuthAttempt, ClientAuthError, ClientCredentials};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::Bytes;
use std::net::{IpAddr, Ipv4Addr};

/// Parses the form and authenticates the client of a token-endpoint-style request (token,
/// revoke, introspect).
pub async fn authenticated_form(
    req: &HttpRequest,
    body: &Bytes,
    state: &AppState,
) -> Result<(form::FormParams, std::sync::Arc<crate::config::ValidClient>), OAuthError> {
    let params = form::parse(req, body)?;
    let client = authenticate(req, &params, state).await?;
    Ok((params, client))
}

async fn authenticate(
    req: &HttpRequest,
    params: &form::FormParams,
    state: &AppState,
) -> Result<std::sync::Arc<crate::config::ValidClient>, OAuthError> {
    // A header that is not visible ASCII is still an attempt at client authentication: it
    // reads as empty, which fails as malformed credentials rather than being ignored.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let credentials = ClientCredentials::from_parts(
        authorization,
        params.get("client_id"),
        params.get("client_secret"),
    )
    .map_err(client_error)?;
    tracing::Span::current().record("client_id", credentials.id());
    let attempt = AuthAttempt {
        source: source_address(req),
        limits: state.config.limits,
        now: state.clock.now(),
    };
    state
        .clients
        .authenticate(credentials, attempt)
        .await
        .map_err(client_error)
}

/// The address limits are counted under: the TCP peer (a proxy in front of guildgate should
/// be the only peer; until trusted proxies are configurable, everyone behind it shares it).
pub(super) fn source_address(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
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
