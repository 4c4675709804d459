//! Compact JWS signing (RFC 7515 §7.1) with keys parsed once at load.
//!
//! jsonwebtoken verifies our tokens, but its signer parses the private key's DER on every
//! signature, which for RSA costs about as much as the signature itself; so guildgate assembles
//! `BASE64URL(header) . BASE64URL(claims) . BASE64URL(signature)` here and signs with the
//! key pairs [`crate::keys`] keeps.

use crate::keys::{AccessKey, KeySet, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// The algorithms guildgate signs with (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: every relying party supports it (OIDC Core §15.1).
    RS256,
    /// ECDSA P-256 with SHA-256: about ten times cheaper to sign; used for access tokens.
    ES256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }
}

/// The algorithms guildgate accepts in JWTs that others sign with their own keys (client
/// assertions, DPoP proofs): asymmetric only, never `none` or a MAC (RFC 8725 §3.1).
pub const FOREIGN_ALGORITHMS: [jsonwebtoken::Algorithm; 9] = [
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::ES384,
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::RS384,
    jsonwebtoken::Algorithm::RS512,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::PS384,
    jsonwebtoken::Algorithm::PS512,
    jsonwebtoken::Algorithm::EdDSA,
];

/// [`FOREIGN_ALGORITHMS`] by name, space-separated, in the same order (discovery, the `algs`
/// of a DPoP challenge).
pub const FOREIGN_ALGORITHM_NAMES: &str = "ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA";

/// The protected header we write: nothing beyond `alg`, `typ` and `kid`.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The claims could not be serialized.
    #[error("cannot serialize the claims: {0}")]
    Claims(#[from] serde_json::Error),
    /// The key could not sign (or the active key has no ES256 companion).
    #[error("cannot sign: {0}")]
    Key(String),
}

/// Signs `claims` as a compact JWS with the active key of `keys`: its RSA key for RS256, its
/// P-256 companion for ES256; `typ` names the kind of token (RFC 8725 §3.11).
pub fn sign<T: Serialize>(
    keys: &KeySet,
    alg: Alg,
    typ: &str,
    claims: &T,
) -> Result<String, SignError> {
    sign_with(&keys.active(), alg, typ, claims)
}

/// [`sign`] with a given key.
pub fn sign_with<T: Serialize>(
    key: &SigningKey,
    alg: Alg,
    typ: &str,
    claims: &T,
) -> Result<String, SignError> {
    let signer = match alg {
        Alg::RS256 => Signer::Rsa(key),
        Alg::ES256 => Signer::Ec(
            key.access
                .as_ref()
                .ok_or_else(|| SignError::Key("the active key has no P-256 companion".into()))?,
        ),
    };
    let header = Header {
        alg: alg.name(),
        typ,
        kid: match signer {
            Signer::Rsa(k) => &k.kid,
            Signer::Ec(a) => &a.kid,
        },
    };
    let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut jws);
    let signature = match signer {
        Signer::Rsa(k) => k.sign_rs256(jws.as_bytes()),
        Signer::Ec(a) => a.sign(jws.as_bytes()),
    }
    .map_err(|e| SignError::Key(e.to_string()))?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
    Ok(jws)
}

/// The private key that signs, by algorithm.
#[derive(Clone, Copy)]
enum Signer<'a> {
    Rsa(&'a SigningKey),
    Ec(&'a AccessKey),
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn the_foreign_algorithm_names_are_the_list() {
        let names: Vec<String> = FOREIGN_ALGORITHMS
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        assert_eq!(names.join(" "), FOREIGN_ALGORITHM_NAMES);
    }

    #[test]
    fn tokens_signed_here_verify_with_the_published_keys_in_both_algorithms() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_generate(dir.path(), OffsetDateTime::now_utc()).unwrap();
        let claims = serde_json::json!({"sub": "1", "iss": "https://id.example.com"});
        for (alg, jwt_alg) in [
            (Alg::RS256, jsonwebtoken::Algorithm::RS256),
            (Alg::ES256, jsonwebtoken::Algorithm::ES256),
        ] {
            let token = sign(&keys, alg, "at+jwt", &claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, jwt_alg);
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            let kid = header.kid.unwrap();
            let key = keys.active();
            let decoding = match alg {
                Alg::RS256 => {
                    assert_eq!(kid, key.kid);
                    key.decoding_key().clone()
                }
                Alg::ES256 => {
                    let access = key.access.as_ref().unwrap();
                    assert_eq!(kid, access.kid);
                    access.decoding_key().clone()
                }
            };
            let mut validation = jsonwebtoken::Validation::new(jwt_alg);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
                .expect("verifies");
            assert_eq!(decoded.claims, claims);
        }
    }
}
