//! Authorization responses to the app: success and error redirects (RFC 6749 §4.1.2, RFC 9207).

use super::Context;
use super::authorize::AuthorizationRequest;
use crate::domain::OpaqueToken;
use crate::error::OAuthError;

/// `redirect_uri?code=…&state=…&iss=…` (RFC 6749 §4.1.2, RFC 9207 §2).
pub fn success_redirect(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    code: &OpaqueToken,
) -> String {
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", ctx.config.issuer.as_str()));
    with_query(&request.redirect_uri, &params)
}

/// `redirect_uri?error=…&error_description=…&state=…&iss=…` (RFC 6749 §4.1.2.1).
pub fn error_redirect(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    error: &OAuthError,
) -> String {
    redirect_error(
        &request.redirect_uri,
        request.state.as_deref(),
        error,
        ctx.config.issuer.as_str(),
    )
}

/// The same, from its parts (for errors raised before a request is fully parsed).
pub fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> String {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", &error.description),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    with_query(redirect_uri, &params)
}

/// Appends parameters to a (verified) redirect URI, keeping any query it already has.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{encoded}")
}
