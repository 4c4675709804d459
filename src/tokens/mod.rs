//! JWTs we mint and verify: ID tokens (OIDC Core §2), access tokens (RFC 9068), logout tokens
//! (Back-Channel Logout §2.4), consent tickets; at_hash.
//!
//! All of them are signed by the same keys, so each kind carries its own `typ` header and every
//! verification names the kind it expects (RFC 8725 §3.11, explicit typing): an access token or
//! a logout token can never pass as an ID token hint, nor the reverse.

use crate::jws::Alg;
use crate::keys::KeySet;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

mod claims;
pub use claims::{
    AccessTokenClaims, Confirmation, IdTokenClaims, IntrospectedToken, Introspection,
    LogoutTokenClaims, SERVICE_TOKEN_GTY,
};

/// The kinds of JWT guildgate signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// OIDC Core §2. `typ: JWT`, which is what relying parties expect; since that type is
    /// generic, verification also requires the ID token's shape (see [`verify_id_token_hint`]).
    IdToken,
    /// RFC 9068 §2.1: `typ: at+jwt`.
    AccessToken,
    /// Back-Channel Logout §2.4: `typ: logout+jwt`.
    LogoutToken,
    /// The pending request sealed into the consent form: `typ: consent+jwt`.
    ConsentTicket,
    /// The device sign-in sealed into the `/device` confirmation form: `typ: device+jwt`.
    DeviceTicket,
}

impl TokenKind {
    /// The `typ` header value of this kind.
    pub fn typ(self) -> &'static str {
        match self {
            Self::IdToken => "JWT",
            Self::AccessToken => ACCESS_TOKEN_TYP,
            Self::LogoutToken => "logout+jwt",
            Self::ConsentTicket => "consent+jwt",
            Self::DeviceTicket => "device+jwt",
        }
    }
}

/// The RFC 9068 §2.1 media type of our access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims only other kinds carry: access tokens (`scope`, `client_id`, `gid`, `jti`), logout
/// tokens (`events`, `jti`) and consent tickets (`request`). An ID token has none of them.
const NOT_IN_ID_TOKENS: [&str; 6] = ["events", "scope", "client_id", "gid", "jti", "request"];

/// Why a token could not be minted or accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signing failed (a key problem: an internal error).
    #[error("cannot sign token: {0}")]
    Sign(String),
    /// Malformed, wrong type, unknown key, bad signature, wrong issuer.
    #[error("token is not valid: {0}")]
    Invalid(&'static str),
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
}

/// Signs claims with the active key: RS256, `kid` set, `typ` of the kind.
pub fn sign<T: Serialize>(
    keys: &KeySet,
    kind: TokenKind,
    claims: &T,
) -> Result<String, TokenError> {
    sign_as(keys, Alg::RS256, kind, claims)
}

/// Signs an access token (RFC 9068) with the configured algorithm (`tokens.access_token_alg`);
/// ES256 falls back to RS256 for a key without a P-256 companion (a read-only keys folder).
pub fn sign_access_token(
    keys: &KeySet,
    alg: Alg,
    claims: &AccessTokenClaims,
) -> Result<String, TokenError> {
    sign_preferring(keys, alg, TokenKind::AccessToken, claims)
}

/// Signs with `alg` and the active key, or with RS256 where that key has no P-256 companion.
fn sign_preferring<T: Serialize>(
    keys: &KeySet,
    alg: Alg,
    kind: TokenKind,
    claims: &T,
) -> Result<String, TokenError> {
    let key = keys.active();
    let alg = match alg {
        Alg::ES256 if key.access.is_none() => Alg::RS256,
        other => other,
    };
    crate::jws::sign_with(&key, alg, kind.typ(), claims)
        .map_err(|e| TokenError::Sign(e.to_string()))
}

fn sign_as<T: Serialize>(
    keys: &KeySet,
    alg: Alg,
    kind: TokenKind,
    claims: &T,
) -> Result<String, TokenError> {
    crate::jws::sign(keys, alg, kind.typ(), claims).map_err(|e| TokenError::Sign(e.to_string()))
}

/// Signs an ID token from a prepared claim set (`iss`, `sub`, `aud`, … already inside), with
/// the client's `id_token_signed_response_alg` (RS256 unless it asked for ES256).
pub fn sign_id_token(
    keys: &KeySet,
    alg: Alg,
    claims: &IdTokenClaims,
) -> Result<String, TokenError> {
    sign_preferring(keys, alg, TokenKind::IdToken, claims)
}

/// Verifies signature (any published key), `typ`, `iss` and `exp` against our clock.
pub fn verify_access_token(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<AccessTokenClaims, TokenError> {
    let claims: AccessTokenClaims = verify(keys, issuer, token, TokenKind::AccessToken)?;
    if claims.exp <= now.unix_timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Verifies one of our ID tokens ignoring expiry (for `id_token_hint`, OIDC Core §3.1.2.1):
/// `typ: JWT`, and the ID token's shape (`sub`, `aud`, `iat`, `exp`, none of the claims that
/// only other kinds carry), so no other token we sign passes. An ES256 one passes only when its
/// audience is a client whose ID tokens are ES256 (`es256_audience`): RFC 8725 §3.1, the
/// algorithm is the one we sign that client's ID tokens with, never the token's say-so.
pub fn verify_id_token_hint(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    es256_audience: &dyn Fn(&str) -> bool,
) -> Result<Map<String, Value>, TokenError> {
    let claims: Map<String, Value> = verify(keys, issuer, token, TokenKind::IdToken)?;
    let es256 = jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::ES256);
    if es256
        && !claims
            .get("aud")
            .and_then(Value::as_str)
            .is_some_and(es256_audience)
    {
        return Err(TokenError::Invalid("unexpected algorithm"));
    }
    let has_string = |name: &str| claims.get(name).is_some_and(Value::is_string);
    let has_number = |name: &str| claims.get(name).is_some_and(Value::is_number);
    let id_token_shaped = has_string("sub")
        && claims.contains_key("aud")
        && has_number("iat")
        && has_number("exp")
        && !NOT_IN_ID_TOKENS
            .iter()
            .any(|name| claims.contains_key(*name));
    if id_token_shaped {
        Ok(claims)
    } else {
        Err(TokenError::Invalid("not an ID token"))
    }
}

/// Verifies one of our own JWTs of the given kind (e.g. consent tickets), ignoring `exp`
/// (callers compare it with the app clock).
pub fn verify_typed<T: serde::de::DeserializeOwned>(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    kind: TokenKind,
) -> Result<T, TokenError> {
    verify(keys, issuer, token, kind)
}

fn verify<T: serde::de::DeserializeOwned>(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    kind: TokenKind,
) -> Result<T, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("malformed token"))?;
    // RFC 8725 §3.1: the algorithm is the one we sign this kind with, never the token's say-so.
    // Access tokens may be ES256 (the default) or RS256 (before a switch, or by configuration);
    // ID tokens ES256 for clients that ask for it (`id_token_signed_response_alg`).
    let allowed = header.alg == Algorithm::RS256
        || (header.alg == Algorithm::ES256
            && matches!(kind, TokenKind::AccessToken | TokenKind::IdToken));
    if !allowed {
        return Err(TokenError::Invalid("unexpected algorithm"));
    }
    // RFC 8725 §3.11: the type is part of the signed header, so it cannot be swapped.
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(kind.typ()))
    {
        return Err(TokenError::Invalid("unexpected token type"));
    }
    let kid = header.kid.ok_or(TokenError::Invalid("no kid"))?;
    let unknown = TokenError::Invalid("unknown signing key");
    let key = match header.alg {
        Algorithm::ES256 => keys.find_access(&kid).ok_or(unknown)?,
        _ => keys.find(&kid).ok_or(unknown)?,
    };
    let decoding = match (header.alg, &key.access) {
        (Algorithm::ES256, Some(access)) => access.decoding_key(),
        (Algorithm::ES256, None) => return Err(TokenError::Invalid("unknown signing key")),
        _ => key.decoding_key(),
    };
    let mut validation = Validation::new(header.alg);
    // Expiry is checked against the app clock by the callers; audience by the endpoint.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<T>(token, decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| TokenError::Invalid("bad signature or claims"))
}

/// OIDC Back-Channel Logout 1.0 §2.4: the `events` member of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Signs a logout token with `typ: logout+jwt` (Back-Channel Logout §2.4, recommended type).
pub fn sign_logout_token(keys: &KeySet, claims: &LogoutTokenClaims) -> Result<String, TokenError> {
    sign(keys, TokenKind::LogoutToken, claims)
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
    fn id_token_claims_put_person_claims_beside_the_protocol_ones() {
        let mut person = Map::new();
        person.insert("preferred_username".into(), Value::from("bob"));
        let claims = IdTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "1".into(),
            aud: "app".into(),
            azp: "app".into(),
            iat: 10,
            exp: 70,
            auth_time: 5,
            at_hash: "h".into(),
            sid: None,
            nonce: Some("n".into()),
            person,
        };
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["preferred_username"], "bob");
        assert_eq!(json["nonce"], "n");
        assert!(
            json.get("sid").is_none(),
            "no session, no sid member: {json}"
        );
        assert!(
            json.get("person").is_none(),
            "person claims are flattened: {json}"
        );
    }

    #[test]
    fn an_inactive_introspection_says_nothing_else() {
        let json = serde_json::to_value(Introspection::inactive()).unwrap();
        assert_eq!(json, serde_json::json!({"active": false}));
    }

    /// An access token's claims issued at `now`, valid for a minute.
    fn access_claims(now: OffsetDateTime) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "1".into(),
            aud: "app".into(),
            exp: now.unix_timestamp() + 60,
            iat: now.unix_timestamp(),
            jti: "j".into(),
            client_id: "app".into(),
            scope: "openid".into(),
            auth_time: Some(now.unix_timestamp()),
            sid: None,
            gid: Some("g".into()),
            cnf: None,
            gty: None,
        }
    }

    #[test]
    fn remembered_tokens_still_expire_and_need_a_published_key() {
        // Arrange: an ES256 access token, verified once.
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let keys = KeySet::load_or_generate(dir.path(), now).unwrap();
        let claims = access_claims(now);
        let token = sign_access_token(&keys, Alg::ES256, &claims).unwrap();
        let verified = VerifiedTokens::default();
        let issuer = "https://id.example.com";
        assert_eq!(verified.verify(&keys, issuer, &token, now).unwrap(), claims);

        // Act + Assert: remembered, yet expiry is checked on every use.
        assert_eq!(verified.verify(&keys, issuer, &token, now).unwrap(), claims);
        let later = now + time::Duration::seconds(61);
        assert!(matches!(
            verified.verify(&keys, issuer, &token, later),
            Err(TokenError::Expired)
        ));
        // A token that never verified is not remembered as verified.
        let forged = token.replacen(".ey", ".eX", 1);
        assert_ne!(forged, token);
        assert!(verified.verify(&keys, issuer, &forged, now).is_err());
        // Once its key is no longer published (folder emptied, keys reloaded), it is refused.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        crate::keys::generate_key_file(dir.path(), now).unwrap();
        keys.reload(now + time::Duration::seconds(1)).unwrap();
        assert!(verified.verify(&keys, issuer, &token, now).is_err());
    }

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
        let claims = access_claims(now);
        let token = sign(&keys, TokenKind::AccessToken, &claims).unwrap();
        let back = verify_access_token(&keys, "https://id.example.com", &token, now).unwrap();
        assert_eq!(back, claims);
        let later = now + time::Duration::seconds(61);
        assert!(matches!(
            verify_access_token(&keys, "https://id.example.com", &token, later),
            Err(TokenError::Expired)
        ));
        assert!(verify_access_token(&keys, "https://other.example", &token, now).is_err());
        // An ID token (typ JWT) is not accepted as an access token.
        let id = sign(&keys, TokenKind::IdToken, &claims).unwrap();
        assert!(verify_access_token(&keys, "https://id.example.com", &id, now).is_err());
    }

    #[test]
    fn only_an_id_token_is_accepted_as_an_id_token_hint() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let keys = KeySet::load_or_generate(dir.path(), now).unwrap();
        let iss = "https://id.example.com";
        let id_claims = serde_json::json!({
            "iss": iss, "sub": "1", "aud": "app", "azp": "app", "iat": now.unix_timestamp(),
            "exp": now.unix_timestamp() + 60, "auth_time": now.unix_timestamp(), "sid": "s",
        });
        let id_token = sign(&keys, TokenKind::IdToken, &id_claims).unwrap();
        assert!(verify_id_token_hint(&keys, iss, &id_token, &|_| false).is_ok());

        // The same claims under another kind's type, and other kinds' claims under `JWT`.
        for kind in [
            TokenKind::AccessToken,
            TokenKind::LogoutToken,
            TokenKind::ConsentTicket,
        ] {
            let other = sign(&keys, kind, &id_claims).unwrap();
            assert!(
                verify_id_token_hint(&keys, iss, &other, &|_| true).is_err(),
                "{kind:?} accepted as an ID token"
            );
        }
        for extra in NOT_IN_ID_TOKENS {
            let mut claims = id_claims.clone();
            claims[extra] = serde_json::json!("x");
            let forged_shape = sign(&keys, TokenKind::IdToken, &claims).unwrap();
            assert!(
                verify_id_token_hint(&keys, iss, &forged_shape, &|_| true).is_err(),
                "an ID token with {extra} accepted"
            );
        }
    }
}

/// Most access tokens remembered as verified; past this, expired ones go, then all of them.
const VERIFIED_CAPACITY: usize = 10_000;

/// Access tokens whose signature was already checked, keyed by their SHA-256, so a resource
/// server that presents one token many times (to `/userinfo`, to `/introspect`) pays for the
/// signature check once: a profile of `/userinfo` under load showed ES256 verification at about
/// a quarter of the process's CPU. Only what the signature proves is remembered: expiry is
/// compared on every use, the signing key must still be published, and revocation is always
/// asked of the store.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], (String, AccessTokenClaims)>>,
}

impl VerifiedTokens {
    /// [`verify_access_token`], remembering the result.
    pub fn verify(
        &self,
        keys: &KeySet,
        issuer: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self
            .map
            .lock()
            .ok()
            .and_then(|map| map.get(&digest).cloned());
        if let Some((kid, claims)) = remembered {
            let published = keys.find_access(&kid).is_some() || keys.find(&kid).is_some();
            if published {
                if claims.exp <= now.unix_timestamp() {
                    return Err(TokenError::Expired);
                }
                return Ok(claims);
            }
        }
        let claims = verify_access_token(keys, issuer, token, now)?;
        let kid = jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .unwrap_or_default();
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= VERIFIED_CAPACITY {
                let now = now.unix_timestamp();
                map.retain(|_, (_, c)| c.exp > now);
                if map.len() >= VERIFIED_CAPACITY {
                    map.clear();
                }
            }
            map.insert(digest, (kid, claims.clone()));
        }
        Ok(claims)
    }
}
