//! The ES256 companion of each signing key: a P-256 key that signs access tokens.
//!
//! An RS256 signature costs a core about 0.25 ms; an ES256 one about 0.03 ms. A token response
//! signs an ID token (RS256: every relying party supports it) and an access token (read only by
//! resource servers, which support ES256), so signing access tokens with P-256 halves the RSA
//! work per response. The companion lives beside its RSA key as `<same seconds>.p256`
//! (PKCS#8 PEM, mode 0600), is published in the JWKS with its own `kid`, and follows the RSA
//! key's life: created with it, retired with it (`.p256.retired`). Names not ending in `.pem`
//! keep older releases, which ignore them, able to read the folder.

use super::KeyError;
use super::write::write_new_private_file;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use openidconnect::JsonWebKeyId;
use openidconnect::core::{CoreJsonCurveType, CoreJsonWebKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// A P-256 key pair, parsed once, with what verifying and publishing it need.
pub struct AccessKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    pair: EcdsaKeyPair,
    decoding: DecodingKey,
    pub(super) jwk: CoreJsonWebKey,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AccessKey {
    /// ES256 signature of `message`: `r || s`, 64 bytes, as JWS wants it (RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError::Generate("ES256 signing failed".into()))
    }

    /// The public key for verifying with jsonwebtoken.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// `1700000000.pem` → `1700000000.p256`; `….pem.retired` → `….p256.retired`;
/// `….pem.revoked` → `….p256.revoked`.
pub(super) fn companion_path(rsa_path: &Path) -> PathBuf {
    let name = rsa_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let companion = if let Some(stem) = name.strip_suffix(".pem.retired") {
        format!("{stem}.p256.retired")
    } else if let Some(stem) = name.strip_suffix(".pem.revoked") {
        format!("{stem}.p256.revoked")
    } else {
        format!("{}.p256", name.trim_end_matches(".pem"))
    };
    rsa_path.with_file_name(companion)
}

/// The companion of a live RSA key, created when missing (keys from releases before access
/// tokens were ES256) where the folder is writable; a retired or revoked key's companion is
/// read if present and never created.
pub(super) fn load_or_create(
    rsa_path: &Path,
    unpublished: bool,
) -> Result<Option<AccessKey>, KeyError> {
    let path = companion_path(rsa_path);
    if !path.exists() {
        if unpublished {
            return Ok(None);
        }
        // A read-only folder (a secret mount holding keys from an earlier release) cannot take
        // a companion: that key then signs access tokens with RSA, as before.
        if let Err(e) = create(&path) {
            tracing::warn!(error = %e, "no P-256 companion for this key; its access tokens are signed RS256");
            return Ok(None);
        }
    }
    let pem = std::fs::read_to_string(&path).map_err(|e| KeyError::Read {
        path: path.clone(),
        cause: e,
    })?;
    parse(&path, &pem).map(Some)
}

/// Writes a fresh P-256 key at `path` unless one is already there (another process sharing
/// the folder may create it at the same moment: the first one wins, the other reads it).
pub(super) fn create(path: &Path) -> Result<(), KeyError> {
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| KeyError::Generate("cannot generate a P-256 key".into()))?;
    write_new_private_file(path, pem("PRIVATE KEY", der.as_ref()).as_bytes())
}

fn parse(path: &Path, pem_text: &str) -> Result<AccessKey, KeyError> {
    let corrupt = |reason: &str| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let body: String = pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body.trim())
        .map_err(|_| corrupt("not PEM"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|_| corrupt("not a P-256 PKCS#8 private key"))?;
    // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    let (x, y) = match point {
        [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(corrupt("unexpected public key encoding")),
    };
    let (x64, y64) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
    let kid = thumbprint(&x64, &y64);
    let decoding =
        DecodingKey::from_ec_components(&x64, &y64).map_err(|_| corrupt("unusable public key"))?;
    let jwk = CoreJsonWebKey::new_ec(
        x.to_vec(),
        y.to_vec(),
        CoreJsonCurveType::P256,
        Some(JsonWebKeyId::new(kid.clone())),
    );
    Ok(AccessKey {
        kid,
        pair,
        decoding,
        jwk,
    })
}

/// RFC 7638 §3.2 for an EC key: `crv`, `kty`, `x`, `y` in that order, no whitespace.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// PEM armour around DER.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companion_names_follow_the_rsa_key() {
        assert_eq!(
            companion_path(Path::new("/k/1700000000.pem")),
            Path::new("/k/1700000000.p256")
        );
        assert_eq!(
            companion_path(Path::new("/k/1700000000.pem.retired")),
            Path::new("/k/1700000000.p256.retired")
        );
        assert_eq!(
            companion_path(Path::new("/k/1700000000.pem.revoked")),
            Path::new("/k/1700000000.p256.revoked")
        );
    }

    #[test]
    fn a_companion_that_cannot_be_written_leaves_the_key_without_one() {
        // A folder guildgate cannot write into (here: one that does not exist) is not an error:
        // that key keeps signing access tokens with RSA.
        let dir = tempfile::tempdir().unwrap();
        let rsa = dir.path().join("missing").join("1700000000.pem");
        assert!(load_or_create(&rsa, false).unwrap().is_none());
    }

    #[test]
    fn a_created_key_signs_what_its_published_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let rsa = dir.path().join("1700000000.pem");
        let key = load_or_create(&rsa, false).unwrap().expect("created");
        let again = load_or_create(&rsa, false).unwrap().expect("read back");
        assert_eq!(key.kid, again.kid, "created once, then read");
        assert!(
            load_or_create(&dir.path().join("1.pem.retired"), true)
                .unwrap()
                .is_none()
        );

        let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0";
        let signature = key.sign(message).unwrap();
        assert_eq!(signature.len(), 64, "r || s");
        let jws = format!(
            "{}.{}",
            std::str::from_utf8(message).unwrap(),
            URL_SAFE_NO_PAD.encode(&signature)
        );
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&jws, key.decoding_key(), &validation)
            .expect("verifies with the published key");
        let jwk = serde_json::to_value(&key.jwk).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none(), "never the private part");
    }
}
