//! Key files on disk: naming, listing, parsing (kid = RFC 7638 thumbprint), writing new ones.

use super::write::write_private_file;
use super::{KeyError, KeyState, SigningKey, Stored};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use openidconnect::JsonWebKeyId;
use openidconnect::core::CoreJsonWebKey;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// RSA modulus size for generated keys.
const KEY_BITS: usize = 2048;

/// Adds a new key that signs from `activates_at` on (`now` for an immediate rotation). Names
/// carry whole seconds, so a second key in the same second activates one second later; the
/// returned time is the one actually used.
pub fn generate_key_file(
    dir: &Path,
    activates_at: OffsetDateTime,
) -> Result<(PathBuf, OffsetDateTime), KeyError> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let mut ts = activates_at.unix_timestamp();
    let mut path = dir.join(format!("{ts}.pem"));
    // Two rotations within one second must not overwrite each other (nor take a retired or
    // revoked key's name).
    while path.exists()
        || dir.join(format!("{ts}.pem.retired")).exists()
        || dir.join(format!("{ts}.pem.revoked")).exists()
    {
        ts += 1;
        path = dir.join(format!("{ts}.pem"));
    }
    // The access-token companion first: a process that sees the RSA key finds it ready.
    super::p256::create(&super::p256::companion_path(&path))?;
    write_private_file(&path, pem.as_bytes())?;
    let used = OffsetDateTime::from_unix_timestamp(ts).unwrap_or(activates_at);
    Ok((path, used))
}

/// `(path, activates_at, how it is kept)` for every key file; other files are ignored.
pub(super) fn list_key_files(
    dir: &Path,
) -> Result<Vec<(PathBuf, OffsetDateTime, Stored)>, KeyError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| KeyError::Folder {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|cause| KeyError::Folder {
            path: dir.to_path_buf(),
            cause,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (stem, stored) = if let Some(stem) = name.strip_suffix(".pem.retired") {
            (stem, Stored::Retired)
        } else if let Some(stem) = name.strip_suffix(".pem.revoked") {
            (stem, Stored::Revoked)
        } else if let Some(stem) = name.strip_suffix(".pem") {
            (stem, Stored::Published)
        } else {
            continue;
        };
        let activates_at = stem
            .parse::<i64>()
            .ok()
            .and_then(|ts| OffsetDateTime::from_unix_timestamp(ts).ok())
            .ok_or_else(|| KeyError::Corrupt {
                path: entry.path(),
                reason: "the file name must be <unix-seconds>.pem".into(),
            })?;
        out.push((entry.path(), activates_at, stored));
    }
    Ok(out)
}

pub(super) fn parse_key(
    path: PathBuf,
    pem: &str,
    activates_at: OffsetDateTime,
    stored: Stored,
) -> Result<SigningKey, KeyError> {
    let corrupt = |reason: String| KeyError::Corrupt {
        path: path.clone(),
        reason,
    };
    let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| corrupt(e.to_string()))?;
    let n = private.n().to_bytes_be();
    let e = private.e().to_bytes_be();
    let kid = thumbprint(&n, &e);
    let der = private.to_pkcs8_der().map_err(|e| corrupt(e.to_string()))?;
    // Parsed (and checked) once here: jsonwebtoken's signer would parse the DER per signature.
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
        .map_err(|e| corrupt(e.to_string()))?;
    let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
    let access = super::p256::load_or_create(&path, stored != Stored::Published)?;
    let jwk = CoreJsonWebKey::new_rsa(n, e, Some(JsonWebKeyId::new(kid.clone())));
    Ok(SigningKey {
        kid,
        activates_at,
        // A published key's state follows from the time (`read_folder`).
        state: match stored {
            Stored::Published => KeyState::Active,
            Stored::Retired => KeyState::Retired,
            Stored::Revoked => KeyState::Revoked,
        },
        path,
        pair,
        decoding,
        jwk,
        access,
    })
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
pub(super) fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}
