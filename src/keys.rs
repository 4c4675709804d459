//! Signing keys: RSA PEM files in `keys.dir`, loaded once; `kid` = RFC 7638 thumbprint; the JWKS.
//!
//! A key file is named `<activates_at_unix>.pem` (PKCS#8, mode 0600). The active key is the
//! newest one whose activation time has passed; every key that is not retired is published.
//! A retired key is renamed `<...>.pem.retired` and no longer published. A file that cannot be
//! read or parsed stops start-up: silently replacing it would log everyone out and break every
//! relying party's JWKS cache.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use openidconnect::JsonWebKeyId;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// RSA modulus size for generated keys.
const KEY_BITS: usize = 2048;

/// Why the key folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The folder could not be read or created.
    #[error("cannot use key folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not an RSA PKCS#8 PEM key (corrupt or foreign).
    #[error(
        "key file {path} is not a valid RSA private key ({reason}); restore it from backup or move it away deliberately — it is never replaced automatically"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// Writing a new key failed.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Key generation or encoding failed.
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    /// There is no usable key (all retired or none active yet).
    #[error("no active signing key in {0}; run `guildgate keys rotate`")]
    NoActiveKey(PathBuf),
}

/// Lifecycle position of a key, as shown by `keys list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, activates later (pre-published for RP caches).
    Next,
    /// Signs new tokens.
    Active,
    /// Published so tokens it signed still verify; no longer signs.
    Previous,
    /// Not published.
    Retired,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Previous => "previous",
            Self::Retired => "retired",
        })
    }
}

/// One RSA key, parsed once into everything signing and verifying need.
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// When it starts (or started) to sign.
    pub activates_at: OffsetDateTime,
    /// Its state at load time.
    pub state: KeyState,
    /// The file it came from.
    pub path: PathBuf,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: CoreJsonWebKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The private key for signing with jsonwebtoken.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public key for verifying with jsonwebtoken.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// Every key in the folder, with the JWKS document serialized once.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    active: usize,
    jwks: bytes::Bytes,
}

impl KeySet {
    /// Loads the folder, generating a first key when it holds none.
    pub fn load_or_generate(dir: &Path, now: OffsetDateTime) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        if list_key_files(dir)?.is_empty() {
            generate_key_file(dir, now)?;
            tracing::info!(dir = %dir.display(), "generated a first RSA-2048 signing key");
        }
        Self::load(dir, now)
    }

    /// Loads the folder as it is; fails on any unreadable key or when none is active.
    pub fn load(dir: &Path, now: OffsetDateTime) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (path, activates_at, retired) in list_key_files(dir)? {
            let pem = std::fs::read_to_string(&path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            keys.push(parse_key(path, &pem, activates_at, retired)?);
        }
        keys.sort_by_key(|k| k.activates_at);
        let active = keys
            .iter()
            .rposition(|k| k.state != KeyState::Retired && k.activates_at <= now)
            .ok_or_else(|| KeyError::NoActiveKey(dir.to_path_buf()))?;
        for (i, key) in keys.iter_mut().enumerate() {
            if key.state == KeyState::Retired {
                continue;
            }
            key.state = match i.cmp(&active) {
                std::cmp::Ordering::Less => KeyState::Previous,
                std::cmp::Ordering::Equal => KeyState::Active,
                std::cmp::Ordering::Greater => KeyState::Next,
            };
        }
        let published: Vec<CoreJsonWebKey> = keys
            .iter()
            .filter(|k| k.state != KeyState::Retired)
            .map(|k| k.jwk.clone())
            .collect();
        let jwks = serde_json::to_vec(&CoreJsonWebKeySet::new(published))
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .into();
        Ok(Self { keys, active, jwks })
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &SigningKey {
        // `load` guarantees the index is in range.
        &self.keys[self.active]
    }

    /// A published key by `kid`, for verifying our own tokens.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.state != KeyState::Retired)
    }

    /// Every key, oldest first (for `keys list`).
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The JWKS document, serialized once at load.
    pub fn jwks_json(&self) -> &bytes::Bytes {
        &self.jwks
    }
}

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
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
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
fn list_key_files(dir: &Path) -> Result<Vec<(PathBuf, OffsetDateTime, bool)>, KeyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| KeyError::Folder {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KeyError::Folder {
            path: dir.to_path_buf(),
            source,
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

fn parse_key(
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
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1 example key and its published thumbprint.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        assert_eq!(
            thumbprint(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn first_load_generates_a_private_key_and_publishes_it() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let set = KeySet::load_or_generate(dir.path(), now).unwrap();
        assert_eq!(set.all().len(), 1);
        assert_eq!(set.active().state, KeyState::Active);
        let jwks: serde_json::Value = serde_json::from_slice(set.jwks_json()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], set.active().kid.as_str());
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "private part must never be published"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&set.active().path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second start reuses the key rather than generating another.
        let again = KeySet::load_or_generate(dir.path(), now).unwrap();
        assert_eq!(again.active().kid, set.active().kid);
    }

    #[test]
    fn rotation_keeps_the_old_key_published_and_signs_with_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = KeySet::load_or_generate(dir.path(), now)
            .unwrap()
            .active()
            .kid
            .clone();
        let (_, active_from) = generate_key_file(dir.path(), now).unwrap();
        assert!(active_from - now <= time::Duration::seconds(1));
        let set = KeySet::load(dir.path(), active_from).unwrap();
        assert_ne!(set.active().kid, first);
        assert_eq!(set.find(&first).unwrap().state, KeyState::Previous);
        let jwks: serde_json::Value = serde_json::from_slice(set.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_corrupt_key_file_stops_loading_and_is_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1700000000.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = KeySet::load_or_generate(dir.path(), OffsetDateTime::now_utc()).unwrap_err();
        assert!(matches!(err, KeyError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
