//! The claims of each kind of JWT we sign (ID, access, logout tokens) and of an introspection
//! answer, as typed structs: flows fill them, `tokens` signs and verifies them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Claims of an access token (RFC 9068 §2.2), plus `gid` naming its grant for revocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject as this client sees it.
    pub sub: String,
    /// Audience: the client.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id (revocation by `jti`).
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scope: String,
    /// Time of authentication at Discord (a person's tokens only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    /// SSO session id, when issued under one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// Grant (token family) id: revoking the grant revokes this token. Service tokens have
    /// none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gid: Option<String>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
    /// `client_credentials` on a service token (its `sub` is the client), so resource servers
    /// can tell it from a person's token; absent on a person's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gty: Option<String>,
}

impl AccessTokenClaims {
    /// Whether this is a service token (client credentials): no person behind it.
    pub fn is_service_token(&self) -> bool {
        self.gty.as_deref() == Some(SERVICE_TOKEN_GTY)
    }
}

/// The `gty` of a service token.
pub const SERVICE_TOKEN_GTY: &str = "client_credentials";

/// A token's proof-of-possession confirmation (RFC 7800 §3.1): the DPoP key's thumbprint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 9449 §6.1: base64url SHA-256 JWK thumbprint.
    pub jkt: crate::domain::Jkt,
}

impl Confirmation {
    /// The confirmation naming `jkt`.
    pub fn of(jkt: &crate::domain::Jkt) -> Self {
        Self { jkt: jkt.clone() }
    }
}

/// Claims of an ID token (OIDC Core §2): the fixed members, plus the scope-dependent person
/// claims (`profile`, `email`, `groups`, …) flattened in beside them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject as this client sees it.
    pub sub: String,
    /// Audience: the client.
    pub aud: String,
    /// Authorized party: the client (OIDC Core §2, single audience).
    pub azp: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// Time of authentication at Discord.
    pub auth_time: i64,
    /// Left half of SHA-256 of the access token issued with it.
    pub at_hash: String,
    /// SSO session id, when issued under one (Front/Back-Channel Logout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The `nonce` of the authorization request, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The person's claims for the granted scopes. The fixed members above always win: the
    /// person claims never carry those names (see `claims.rs`).
    #[serde(flatten)]
    pub person: Map<String, Value>,
}

/// An RFC 7662 §2.2 introspection answer: `{"active": false}` alone, or an active token's
/// description.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is live and was issued to the asking client.
    pub active: bool,
    /// The rest, present only for an active token.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub token: Option<IntrospectedToken>,
}

/// What introspection tells about an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IntrospectedToken {
    /// `Bearer` (or `DPoP` when bound to a key) for access tokens, `refresh_token` for refresh
    /// tokens.
    pub token_type: &'static str,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Subject as this client sees it.
    pub sub: String,
    /// Audience: the client.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id (access tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// SSO session id (access tokens issued under one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The DPoP key a bound access token needs (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// `client_credentials` for a service token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gty: Option<String>,
}

impl Introspection {
    /// The answer for a token that is not live, not ours, or not the caller's.
    pub fn inactive() -> Self {
        Self {
            active: false,
            token: None,
        }
    }

    /// The answer for a live token.
    pub fn active(token: IntrospectedToken) -> Self {
        Self {
            active: true,
            token: Some(token),
        }
    }
}

/// Claims of a logout token (Back-Channel Logout §2.4): never a `nonce`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogoutTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The receiving client.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry (short: the token is only meant for immediate delivery and retries).
    pub exp: i64,
    /// Unique id, so receivers can detect replays.
    pub jti: String,
    /// The subject as this client knows it.
    pub sub: String,
    /// The ended session, when the logout is about one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: Map<String, Value>,
}
