//! Key files on disk: naming, listing, parsing (kid = RFC 7638 thumbprint), writing new ones.

use super::{KeyError, KeyState, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use openidconnect::JsonWebKeyId;
use openidconnect::core::CoreJsonWebKey;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::io::Write;
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
    // Two rotations within one second must not overwrite each other.
    while path.exists() || dir.join(format!("{ts}.pem.retired")).exists() {
        ts += 1;
        path = dir.join(format!("{ts}.pem"));
    }
    write_private_file(&path, pem.as_bytes())?;
    let used = OffsetDateTime::from_unix_timestamp(ts).unwrap_or(activates_at);
    Ok((path, used))
}

/// Writes via a temporary file and rename so a crash never leaves a half-written key.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let err = |cause| KeyError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let tmp = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// `(path, activates_at, retired)` for every key file; other files are ignored.
pub(super) fn list_key_files(dir: &Path) -> Result<Vec<(PathBuf, OffsetDateTime, bool)>, KeyError> {
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
        let (stem, retired) = if let Some(stem) = name.strip_suffix(".pem.retired") {
            (stem, true)
        } else if let Some(stem) = name.strip_suffix(".pem") {
            (stem, false)
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
        out.push((entry.path(), activates_at, retired));
    }
    Ok(out)
}

pub(super) fn parse_key(
    path: PathBuf,
    pem: &str,
    activates_at: OffsetDateTime,
    retired: bool,
) -> Result<SigningKey, KeyError> {
    let corrupt = |reason: String| KeyError::Corrupt {
        path: path.clone(),
        reason,
    };
    let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| corrupt(e.to_string()))?;
    let n = private.n().to_bytes_be();
    let e = private.e().to_bytes_be();
    let kid = thumbprint(&n, &e);
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
    let jwk = CoreJsonWebKey::new_rsa(n, e, Some(JsonWebKeyId::new(kid.clone())));
    Ok(SigningKey {
        kid,
        activates_at,
        state: if retired {
            KeyState::Retired
        } else {
            KeyState::Active
        },
        path,
        encoding,
        decoding,
        jwk,
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
