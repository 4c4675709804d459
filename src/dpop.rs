//! DPoP proofs (RFC 9449 §4): checking one against the request it came with, and the server
//! nonces of §8 and §9. Pure: the replay check (one use of each `jti`, across processes) is the
//! flow's, through the store (`flows::dpop`).

use crate::domain::Jkt;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;
use time::OffsetDateTime;

/// The proof algorithms accepted (and advertised as `dpop_signing_alg_values_supported`): the
/// asymmetric ones (RFC 9449 §4.3: never `none` or a MAC).
pub use crate::jws::FOREIGN_ALGORITHMS as ALGORITHMS;

/// The names of [`ALGORITHMS`], space-separated: the `algs` of a DPoP challenge (§7.1).
pub use crate::jws::FOREIGN_ALGORITHM_NAMES as ALGORITHM_NAMES;

/// Longest proof read: a proof with an RSA-4096 key is about 1.5 KB.
const MAX_PROOF_BYTES: usize = 8 * 1024;

/// JWK members that only a private key has (RFC 7518 §6): a proof must never carry them.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// What the proof must match: the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// The endpoint's URL as the issuer names it, without query or fragment (`htu`).
    pub url: &'a str,
    /// The access token presented with it, at a resource (`ath`).
    pub access_token: Option<&'a str>,
    /// The app clock's now.
    pub now: OffsetDateTime,
    /// How far `iat` may lie from now, either way (`dpop.proof_max_age`).
    pub max_age: Duration,
    /// The nonce checker when nonces are required (`dpop.require_nonce`).
    pub nonces: Option<&'a Nonces>,
}

/// A proof that passed every check but the replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key.
    pub jkt: Jkt,
    /// The proof's unique id.
    pub jti: String,
    /// Until when the proof could be accepted: its `jti` is remembered that long.
    pub usable_until: OffsetDateTime,
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Malformed, badly signed, or for another request: `invalid_dpop_proof` (§7.1).
    Invalid(&'static str),
    /// No nonce, or a stale one, where nonces are required: `use_dpop_nonce` (§8, §9).
    NonceNeeded,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks `proof` (the `DPoP` header) against the request it came with (§4.3).
pub fn check(proof: &str, expected: &Expected<'_>) -> Result<Proof, ProofError> {
    use ProofError::Invalid;
    if proof.len() > MAX_PROOF_BYTES {
        return Err(Invalid("the DPoP proof is too long"));
    }
    let header =
        jsonwebtoken::decode_header(proof).map_err(|_| Invalid("the DPoP proof is not a JWT"))?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(Invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(Invalid("the DPoP proof's algorithm is not supported"));
    }
    let jwk = header
        .jwk
        .as_ref()
        .ok_or(Invalid("the DPoP proof carries no jwk"))?;
    if carries_private_members(proof) {
        return Err(Invalid("the DPoP proof's jwk is a private key"));
    }
    let key =
        DecodingKey::from_jwk(jwk).map_err(|_| Invalid("the DPoP proof's jwk is not usable"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| Invalid("the DPoP proof's signature does not verify with its jwk"))?
        .claims;

    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(Invalid("the DPoP proof has no usable jti"))?;
    if claims.htm.as_deref() != Some(expected.method) {
        return Err(Invalid("the DPoP proof is for another HTTP method"));
    }
    if !claims
        .htu
        .as_deref()
        .is_some_and(|htu| same_url(htu, expected.url))
    {
        return Err(Invalid("the DPoP proof is for another URL"));
    }
    let iat = claims.iat.ok_or(Invalid("the DPoP proof has no iat"))?;
    let max_age = i64::try_from(expected.max_age.as_secs()).unwrap_or(i64::MAX / 4);
    let now = expected.now.unix_timestamp();
    if iat < now - max_age || iat > now + max_age {
        return Err(Invalid("the DPoP proof's iat is too far from now"));
    }
    match (expected.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), _) => {
            return Err(Invalid(
                "the DPoP proof's ath does not match the access token",
            ));
        }
        (None, _) => {}
    }
    if let Some(nonces) = expected.nonces {
        if !claims
            .nonce
            .as_deref()
            .is_some_and(|n| nonces.accepts(n, expected.now))
        {
            return Err(ProofError::NonceNeeded);
        }
    }
    let jkt = thumbprint(jwk).ok_or(Invalid("the DPoP proof's jwk has no thumbprint"))?;
    Ok(Proof {
        jkt,
        jti,
        // Outside this window the `iat` check refuses it anyway.
        usable_until: OffsetDateTime::from_unix_timestamp(iat + max_age + 1)
            .unwrap_or(expected.now),
    })
}

/// `ath` (§4.2): base64url SHA-256 of the access token's ASCII.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// RFC 7638 SHA-256 thumbprint of a public key.
pub fn thumbprint(jwk: &Jwk) -> Option<Jkt> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .ok()
        .and_then(|t| Jkt::parse(&t).ok())
}

/// Whether the proof's header `jwk` has a private-key member (jsonwebtoken's `Jwk` drops
/// them, so the raw header is read).
fn carries_private_members(proof: &str) -> bool {
    let Some(encoded) = proof.split('.').next() else {
        return true;
    };
    let Ok(raw) = URL_SAFE_NO_PAD.decode(encoded) else {
        return true;
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&raw) else {
        return true;
    };
    header
        .get("jwk")
        .and_then(|j| j.as_object())
        .is_none_or(|jwk| PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)))
}

/// `htu` against the endpoint (§4.3): scheme and host compare case-insensitively, a default
/// port equals no port, and the proof's query and fragment are ignored.
fn same_url(htu: &str, expected: &str) -> bool {
    let (Ok(mut a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(expected)) else {
        return false;
    };
    a.set_query(None);
    a.set_fragment(None);
    a.as_str() == b.as_str()
}

/// Server-provided nonces (§8, §9): HMAC of the current minute, so every process of a
/// deployment that shares the key accepts any other's, and none has to be stored. A nonce is
/// good for the minute it was made in and the next one.
pub struct Nonces {
    key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<key>)")
    }
}

/// How long one nonce window lasts.
const NONCE_WINDOW_SECS: i64 = 60;

impl Nonces {
    /// Nonces keyed by `key` (derived from `[secrets]`, else random per process).
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        }
    }

    /// The nonce to hand out now (`DPoP-Nonce`).
    pub fn current(&self, now: OffsetDateTime) -> String {
        self.for_window(now.unix_timestamp().div_euclid(NONCE_WINDOW_SECS))
    }

    fn for_window(&self, window: i64) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.key, &window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
    }

    /// Whether `nonce` was handed out in this window or the one before.
    pub fn accepts(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let window = now.unix_timestamp().div_euclid(NONCE_WINDOW_SECS);
        [window, window - 1].into_iter().any(|w| {
            crate::domain::constant_time_eq(self.for_window(w).as_bytes(), nonce.as_bytes())
        })
    }
}

#[cfg(test)]
mod tests;
