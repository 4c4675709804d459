//! Authorization responses to the app: success and error, to the verified redirect URI, in the
//! request's response mode (RFC 6749 §4.1.2, RFC 9207, OAuth 2.0 Form Post Response Mode).

use super::Context;
use super::authorize::{AuthorizationRequest, ResponseMode};
use crate::domain::OpaqueToken;
use crate::error::OAuthError;

/// An authorization response: where it goes, how, and its parameters. Routes turn it into a
/// redirect (query) or an auto-submitting form (form_post); pages link to it the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The verified redirect URI, exactly as registered and sent.
    pub redirect_uri: String,
    /// Query or form_post.
    pub mode: ResponseMode,
    /// `code` or `error`…, then `state` and `iss`.
    pub params: Vec<(&'static str, String)>,
}

impl AuthorizationResponse {
    /// The redirect URI with the parameters appended to its query (keeping any query it has).
    pub fn location(&self) -> String {
        if self.params.is_empty() {
            return self.redirect_uri.clone();
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let separator = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{encoded}", self.redirect_uri)
    }

    /// Whether the browser must post it to the redirect URI (`response_mode=form_post`).
    pub fn is_form_post(&self) -> bool {
        self.mode == ResponseMode::FormPost
    }

    /// A plain link to one of our own pages (the account page, the device page): no parameters.
    pub fn to_page(url: String) -> Self {
        Self {
            redirect_uri: url,
            mode: ResponseMode::Query,
            params: Vec::new(),
        }
    }

    /// The value of one parameter (tests and logs).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `code`, `state`, `iss` (RFC 6749 §4.1.2, RFC 9207 §2).
pub fn success_redirect(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    code: &OpaqueToken,
) -> AuthorizationResponse {
    let mut params = vec![("code", code.expose().to_owned())];
    if let Some(s) = &request.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", ctx.config.issuer.as_str().to_owned()));
    AuthorizationResponse {
        redirect_uri: request.redirect_uri.clone(),
        mode: request.response_mode,
        params,
    }
}

/// `error`, `error_description`, `state`, `iss` (RFC 6749 §4.1.2.1).
pub fn error_redirect(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    error: &OAuthError,
) -> AuthorizationResponse {
    redirect_error(
        &request.redirect_uri,
        request.response_mode,
        request.state.as_deref(),
        error,
        ctx.config.issuer.as_str(),
    )
}

/// The same, from its parts (for errors raised before a request is fully parsed).
pub fn redirect_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> AuthorizationResponse {
    let mut params = vec![
        ("error", error.code.as_str().to_owned()),
        ("error_description", error.description.to_string()),
    ];
    if let Some(s) = state {
        params.push(("state", s.to_owned()));
    }
    params.push(("iss", issuer.to_owned()));
    AuthorizationResponse {
        redirect_uri: redirect_uri.to_owned(),
        mode,
        params,
    }
}
