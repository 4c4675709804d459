//! Errors as responses: OAuth2 error JSON (RFC 6749 §5.2, RFC 6750 §3) and HTML pages for people.
//! These are the crate's only `ResponseError` impls, so no endpoint picks status codes itself.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use std::borrow::Cow;
use std::fmt;

/// The registered error codes we emit, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (401).
    InvalidClient,
    /// RFC 6749 §5.2: bad, expired, revoked or foreign code or refresh token.
    InvalidGrant,
    /// RFC 6749 §5.2.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2.
    InvalidScope,
    /// RFC 6749 §4.1.2.1.
    AccessDenied,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1 (500).
    ServerError,
    /// RFC 6749 §4.1.2.1 (503).
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6.
    LoginRequired,
    /// OIDC Core §3.1.2.6.
    ConsentRequired,
    /// OIDC Core §3.1.2.6.
    InteractionRequired,
    /// OIDC Core §3.1.2.6.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6.
    RequestUriNotSupported,
    /// RFC 6750 §3.1: bad bearer token (401).
    InvalidToken,
    /// RFC 6749 §5.2 / RFC 6750 §3.1: the token lacks a needed scope (a service token at
    /// `/userinfo`).
    InsufficientScope,
    /// RFC 8628 §3.5: the person has not answered yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll less often (5 seconds more).
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 9449 §5, §7.1: a DPoP proof is missing or not acceptable.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: retry with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
}

impl OAuthErrorCode {
    /// The `error` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Retry-After` of a 503 whose cause is passing (the database is down or its disk is full):
/// how long apps and people are asked to wait before retrying.
const UNAVAILABLE_RETRY_AFTER: &str = "5";

/// The description that marks [`OAuthError::no_token`].
const NO_TOKEN: &str = "an access token is required";

/// An OAuth2 error: a code, a description safe to show, and an internal cause that is only logged.
#[derive(Debug)]
pub struct OAuthError {
    /// The RFC code.
    pub code: OAuthErrorCode,
    /// `error_description`: never contains secrets or internal detail.
    pub description: Cow<'static, str>,
    /// The internal cause of a `server_error`, logged with its chain, never sent.
    pub internal: Option<anyhow::Error>,
    /// Set for a request refused by a rate limit: the answer is 429 Too Many Requests with
    /// `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3) and `temporarily_unavailable`.
    pub retry_after: Option<std::time::Duration>,
    /// DPoP on this answer (RFC 9449): the challenge scheme and the nonce to send.
    pub dpop: Option<Box<DpopAnswer>>,
}

/// What a DPoP-related answer carries beyond the error (RFC 9449 §7.1, §8, §9).
#[derive(Debug, Clone, Default)]
pub struct DpopAnswer {
    /// The error answers a request to a protected resource (`/userinfo`): 401 with a
    /// `WWW-Authenticate: DPoP` challenge, rather than the token endpoint's 400.
    pub at_resource: bool,
    /// `DPoP-Nonce`: the nonce the next proof must carry.
    pub nonce: Option<String>,
}

impl OAuthError {
    /// An error with a public description.
    pub fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            internal: None,
            retry_after: None,
            dpop: None,
        }
    }

    /// The same error, answered with DPoP's challenge and nonce (RFC 9449 §7.1, §8, §9).
    pub fn with_dpop(mut self, answer: DpopAnswer) -> Self {
        self.dpop = Some(Box::new(answer));
        self
    }

    /// A request refused by a rate limit, to be tried again after `retry_after`.
    pub fn rate_limited(
        description: impl Into<Cow<'static, str>>,
        retry_after: std::time::Duration,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(OAuthErrorCode::TemporarilyUnavailable, description)
        }
    }

    /// A request to a protected resource that carried no credentials at all: RFC 6750 §3.1 says
    /// the challenge then names no error.
    pub fn no_token() -> Self {
        Self::new(OAuthErrorCode::InvalidToken, NO_TOKEN)
    }

    /// Whether the cause is passing (the database is down or full) rather than a fault: a
    /// person then gets a 503 page, not a 500.
    pub fn is_temporary(&self) -> bool {
        self.code == OAuthErrorCode::TemporarilyUnavailable && self.retry_after.is_none()
    }

    /// A `server_error` whose cause is logged and hidden.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            code: OAuthErrorCode::ServerError,
            description: Cow::Borrowed("the server could not complete the request"),
            internal: Some(cause.into()),
            retry_after: None,
            dpop: None,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        // A database that is down or full is the service's temporary state (RFC 6749 §4.1.2.1):
        // apps may retry, and monitoring sees 503s rather than server faults.
        if e.is_temporary() {
            return Self {
                code: OAuthErrorCode::TemporarilyUnavailable,
                description: Cow::Borrowed("the service is temporarily unavailable; retry later"),
                internal: Some(e.into()),
                retry_after: None,
                dpop: None,
            };
        }
        Self::internal(e)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        if self.retry_after.is_some() {
            return StatusCode::TOO_MANY_REQUESTS;
        }
        let at_resource = self.dpop.as_ref().is_some_and(|d| d.at_resource);
        match self.code {
            OAuthErrorCode::InvalidClient | OAuthErrorCode::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            OAuthErrorCode::InvalidDpopProof | OAuthErrorCode::UseDpopNonce if at_resource => {
                StatusCode::UNAUTHORIZED
            }
            OAuthErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.internal {
            tracing::error!(error = %self.code, cause = format!("{cause:#}"), "request failed");
        } else {
            tracing::info!(error = %self.code, description = %self.description, "request refused");
        }
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up so a client that waits exactly this long is let in.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
        } else if self.code == OAuthErrorCode::TemporarilyUnavailable {
            response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER));
        }
        if let Some(nonce) = self.dpop.as_ref().and_then(|d| d.nonce.as_deref()) {
            if let Ok(v) = HeaderValue::from_str(nonce) {
                response.insert_header(("DPoP-Nonce", v));
            }
        }
        if let Some(dpop) = &self.dpop {
            // RFC 9449 §7.1: the DPoP scheme's challenge names the error and the algorithms.
            let error = match self.code {
                OAuthErrorCode::InvalidToken if self.description == NO_TOKEN => None,
                code => Some(code.as_str()),
            };
            let mut value = format!(
                r#"DPoP realm="guildgate", algs="{}""#,
                crate::dpop::ALGORITHM_NAMES
            );
            if let Some(error) = error {
                value.push_str(&format!(
                    r#", error="{error}", error_description="{}""#,
                    self.description.replace(['"', '\\'], "'")
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.insert_header((header::WWW_AUTHENTICATE, v));
            }
            if dpop.at_resource && error.is_none() {
                return response.finish();
            }
            return response.json(serde_json::json!({
                "error": self.code.as_str(),
                "error_description": self.description,
            }));
        }
        match self.code {
            // RFC 6749 §5.2: a 401 for client authentication names the scheme we accept.
            OAuthErrorCode::InvalidClient => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="guildgate""#));
            }
            // RFC 6750 §3.1: no credentials, no error information.
            OAuthErrorCode::InvalidToken if self.description == NO_TOKEN => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="guildgate""#));
                return response.finish();
            }
            // RFC 6750 §3: the Bearer challenge carries the error code.
            OAuthErrorCode::InvalidToken | OAuthErrorCode::InsufficientScope => {
                let value = format!(
                    r#"Bearer realm="guildgate", error="{}", error_description="{}""#,
                    self.code.as_str(),
                    self.description.replace(['"', '\\'], "'")
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    response.insert_header((header::WWW_AUTHENTICATE, v));
                }
            }
            _ => {}
        }
        response.json(serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }))
    }
}

/// An error shown to a person in the browser as a readable page (never a redirect).
#[derive(Debug)]
pub struct PageError {
    /// HTTP status.
    pub status: StatusCode,
    /// Page heading.
    pub title: Cow<'static, str>,
    /// What happened and what the person can do.
    pub message: Cow<'static, str>,
    /// Logged, never shown.
    pub internal: Option<anyhow::Error>,
}

impl PageError {
    /// A page with a fixed, safe message.
    pub fn new(
        status: StatusCode,
        title: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            internal: None,
        }
    }

    /// The page for a request that failed inside guildgate: 503 with `Retry-After` when the
    /// cause is passing (the database is down or full), so people and monitoring see an outage
    /// rather than a fault; otherwise 500 with `message`, which says what did not happen.
    pub fn failure(temporary: bool, message: &'static str) -> Self {
        if temporary {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The sign-in service cannot use its database right now. Please try again in a moment.",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                message,
            )
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.title, self.message)
    }
}

impl std::error::Error for PageError {}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.internal {
            tracing::error!(cause = format!("{cause:#}"), title = %self.title, "page error");
        } else {
            tracing::info!(title = %self.title, "page error");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER));
        }
        response
            .content_type("text/html; charset=utf-8")
            .body(crate::pages::message_page(&self.title, &self.message))
    }
}
