//! `private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2 and §3): a JWT the
//! client signs with one of its keys, naming itself as `iss` and `sub` and us as `aud`.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms an assertion may be signed with: asymmetric only (a MAC would need a shared
/// secret, which is `client_secret_jwt`, not offered).
use crate::jws::FOREIGN_ALGORITHMS as ALGORITHMS;

/// The longest an assertion may still be valid for: libraries sign them for minutes (some for
/// an hour); each `jti` is remembered until its `exp`, so this also bounds that memory.
const MAX_LIFETIME_SECS: i64 = 3600 + 60;

/// Clock skew tolerated on `iat` and `nbf`.
const SKEW_SECS: i64 = 60;

/// Longest assertion read.
const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// Where the assertion is presented: which `aud` values name us (RFC 7523 §3: the issuer, or
/// the endpoint; the token endpoint is accepted everywhere, as OIDC Core §9 words it).
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// Our issuer.
    pub issuer: &'a str,
    /// The endpoint receiving the assertion.
    pub endpoint: &'a str,
    /// The token endpoint.
    pub token_endpoint: &'a str,
}

impl Audience<'_> {
    fn accepts(&self, aud: &str) -> bool {
        let aud = aud.trim_end_matches('/');
        [self.issuer, self.endpoint, self.token_endpoint]
            .iter()
            .any(|ours| ours.trim_end_matches('/') == aud)
    }
}

/// A verified assertion's one-time id, remembered until it would expire anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionUse {
    /// The assertion's `jti`.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: OffsetDateTime,
}

/// Why an assertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionError {
    /// It names a `kid` none of the client's keys has: the keys may have changed (fetch them
    /// again, at most once a minute).
    UnknownKey,
    /// Anything else; the reason goes to the log only.
    Invalid(&'static str),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Aud>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

/// The client an assertion says it comes from (its `sub`, unverified): used only to find
/// which client's keys to check it with when the request names no `client_id`.
pub fn claimed_client(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return None;
    }
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Claims>(&raw).ok()?.sub
}

/// Verifies `assertion` for `client_id` against its keys, at `audience`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &[Jwk],
    audience: Audience<'_>,
    now: OffsetDateTime,
) -> Result<AssertionUse, AssertionError> {
    use AssertionError::Invalid;
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(Invalid("the client assertion is too long"));
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Invalid("the client assertion is not a JWT"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(Invalid("the client assertion's algorithm is not accepted"));
    }
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(AssertionError::UnknownKey);
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = candidates
        .iter()
        .filter(|jwk| fits(jwk, header.alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<Claims>(assertion, &key, &validation).ok())
        .ok_or(Invalid(
            "the client assertion is not signed by one of the client's keys",
        ))?
        .claims;

    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(Invalid(
            "the client assertion's iss and sub must both be the client id",
        ));
    }
    let audiences = match claims.aud {
        Some(Aud::One(a)) => vec![a],
        Some(Aud::Many(a)) => a,
        None => Vec::new(),
    };
    if !audiences.iter().any(|a| audience.accepts(a)) {
        return Err(Invalid(
            "the client assertion's aud names neither the issuer nor this endpoint",
        ));
    }
    let now_secs = now.unix_timestamp();
    let exp = claims
        .exp
        .ok_or(Invalid("the client assertion has no exp"))?;
    if exp <= now_secs {
        return Err(Invalid("the client assertion has expired"));
    }
    if exp > now_secs + MAX_LIFETIME_SECS {
        return Err(Invalid(
            "the client assertion is valid for too long (at most an hour)",
        ));
    }
    if claims.iat.is_some_and(|iat| iat > now_secs + SKEW_SECS)
        || claims.nbf.is_some_and(|nbf| nbf > now_secs + SKEW_SECS)
    {
        return Err(Invalid("the client assertion is not valid yet"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(Invalid("the client assertion has no usable jti"))?;
    Ok(AssertionUse {
        jti,
        expires_at: OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now),
    })
}

/// Whether a key may verify `alg`: its type fits, and its own `alg`, when it names one, is it.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let family = match &jwk.algorithm {
        P::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        P::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        P::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        _ => false,
    };
    let named = jwk
        .common
        .key_algorithm
        .map(|a| format!("{a:?}"))
        .is_none_or(|named| named == format!("{alg:?}"));
    family && named
}

#[cfg(test)]
mod tests;
