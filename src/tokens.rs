//! JWTs we mint and verify: ID tokens (OIDC Core §2), access tokens (RFC 9068), at_hash.

use crate::keys::KeySet;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The RFC 9068 §2.1 media type of our access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why a token could not be minted or accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signing failed (a key problem: an internal error).
    #[error("cannot sign token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// Malformed, wrong type, unknown key, bad signature, wrong issuer.
    #[error("token is not valid: {0}")]
    Invalid(&'static str),
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
}

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
    /// Time of authentication at Discord.
    pub auth_time: i64,
    /// SSO session id, when issued under one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// Grant (token family) id: revoking the grant revokes this token.
    pub gid: String,
}

/// Signs claims with the active key: RS256, `kid` set, `typ` as given.
pub fn sign<T: Serialize>(keys: &KeySet, typ: &str, claims: &T) -> Result<String, TokenError> {
    let key = keys.active();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).map_err(TokenError::Sign)
}

/// Signs an ID token from a prepared claim set (`iss`, `sub`, `aud`, … already inside).
pub fn sign_id_token(keys: &KeySet, claims: &Map<String, Value>) -> Result<String, TokenError> {
    sign(keys, "JWT", claims)
}

/// Verifies signature (any published key), `typ`, `iss` and `exp` against our clock.
pub fn verify_access_token(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessTokenClaims, TokenError> {
    let claims: AccessTokenClaims = verify(keys, issuer, token, Some(ACCESS_TOKEN_TYP))?;
    if claims.exp <= now.unix_timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Verifies one of our ID tokens ignoring expiry (for `id_token_hint`, OIDC Core §3.1.2.1).
pub fn verify_id_token_hint(
    keys: &KeySet,
    issuer: &str,
    token: &str,
) -> Result<Map<String, Value>, TokenError> {
    verify(keys, issuer, token, None)
}

/// Verifies one of our own JWTs of the given `typ` (e.g. consent tickets), ignoring `exp`
/// (callers compare it with the app clock).
pub fn verify_typed<T: serde::de::DeserializeOwned>(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    typ: &str,
) -> Result<T, TokenError> {
    verify(keys, issuer, token, Some(typ))
}

fn verify<T: serde::de::DeserializeOwned>(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    typ: Option<&str>,
) -> Result<T, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("malformed token"))?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Invalid("unexpected algorithm"));
    }
    if let Some(expected) = typ {
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(expected))
        {
            return Err(TokenError::Invalid("not an access token"));
        }
    }
    let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
    let key = keys
        .find(&kid)
        .ok_or(TokenError::Invalid("unknown signing key"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Expiry is checked against the app clock by the callers; audience by the endpoint.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<T>(token, key.decoding_key(), &validation)
        .map(|data| data.claims)
        .map_err(|_| TokenError::Invalid("bad signature or claims"))
}

/// OIDC Back-Channel Logout 1.0 §2.4: the `events` member of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

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

/// Signs a logout token with `typ: logout+jwt` (Back-Channel Logout §2.4, recommended type).
pub fn sign_logout_token(keys: &KeySet, claims: &LogoutTokenClaims) -> Result<String, TokenError> {
    sign(keys, "logout+jwt", claims)
}

/// OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_left_half_of_sha256() {
        // The left 128 bits of SHA-256("abc"), base64url.
        assert_eq!(at_hash("abc"), "ungWv48Bz-pBQUDeXa4iIw");
    }

    #[test]
    fn access_tokens_round_trip_and_expire_by_the_given_clock() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let keys = KeySet::load_or_generate(dir.path(), now).unwrap();
        let claims = AccessTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "1".into(),
            aud: "app".into(),
            exp: now.unix_timestamp() + 60,
            iat: now.unix_timestamp(),
            jti: "j".into(),
            client_id: "app".into(),
            scope: "openid".into(),
            auth_time: now.unix_timestamp(),
            sid: None,
            gid: "g".into(),
        };
        let token = sign(&keys, ACCESS_TOKEN_TYP, &claims).unwrap();
        let back = verify_access_token(&keys, "https://id.example.com", &token, now).unwrap();
        assert_eq!(back, claims);
        let later = now + time::Duration::seconds(61);
        assert!(matches!(
            verify_access_token(&keys, "https://id.example.com", &token, later),
            Err(TokenError::Expired)
        ));
        assert!(verify_access_token(&keys, "https://other.example", &token, now).is_err());
        // An ID token (typ JWT) is not accepted as an access token.
        let id = sign(&keys, "JWT", &claims).unwrap();
        assert!(verify_access_token(&keys, "https://id.example.com", &id, now).is_err());
    }
}
