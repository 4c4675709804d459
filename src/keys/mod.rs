//! Signing keys: RSA PEM files in `keys.dir`, loaded once; `kid` = RFC 7638 thumbprint; the JWKS.
//!
//! A key file is named `<activates_at_unix>.pem` (PKCS#8, mode 0600). The active key is the
//! newest one whose activation time has passed; every key that is not retired is published.
//! A retired key is renamed `<...>.pem.retired` and no longer published; a revoked one
//! (`keys revoke`, `revoke.rs`) `<...>.pem.revoked`, and tokens it signed no longer verify
//! either. A file that cannot be
//! read or parsed stops start-up: silently replacing it would log everyone out and break every
//! relying party's JWKS cache.

mod files;
mod p256;
mod revoke;
mod write;

pub use files::generate_key_file;
pub use p256::AccessKey;
pub use revoke::{Revocation, revoke_key};

use files::{list_key_files, parse_key};
use jsonwebtoken::DecodingKey;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;

/// Why the key folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The folder could not be read or created.
    #[error("cannot use key folder {path}: {cause}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why (in the message, not `source()`, so a rendered chain shows it once).
        cause: std::io::Error,
    },
    /// A key file could not be read.
    #[error("cannot read key file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A key file is not a usable PKCS#8 PEM key (RSA, or P-256 for a `.p256` companion).
    #[error(
        "key file {path} is not a usable private key ({reason}); restore it from backup or move it away deliberately — it is never replaced automatically"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// Writing a new key failed.
    #[error("cannot write key file {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Key generation or encoding failed.
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    /// There is no usable key (every key retired or revoked).
    #[error("no active signing key in {0}; run `guildgate keys rotate`")]
    NoActiveKey(PathBuf),
    /// `keys revoke` named a key id the folder does not hold.
    #[error(
        "no key with kid {kid} in {dir} (`guildgate keys list` shows the signing keys' kids; the access-token companion's kid is accepted too)"
    )]
    UnknownKid {
        /// The kid asked for.
        kid: String,
        /// The folder.
        dir: PathBuf,
    },
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
    /// Not published: superseded long enough ago that no token it signed is still valid.
    Retired,
    /// Not published, and refused: revoked by `keys revoke` (compromised).
    Revoked,
}

impl KeyState {
    /// Whether the key is in the JWKS and verifies tokens (neither retired nor revoked).
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Retired | Self::Revoked)
    }
}

/// How a key file is kept, from its name: `.pem`, `.pem.retired` or `.pem.revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Published (its state then follows from the time).
    Published,
    /// Renamed by the rotation schedule.
    Retired,
    /// Renamed by `keys revoke`.
    Revoked,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Previous => "previous",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
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
    pub(super) pair: aws_lc_rs::signature::RsaKeyPair,
    pub(super) decoding: DecodingKey,
    pub(super) jwk: CoreJsonWebKey,
    /// Its ES256 companion for access tokens (absent only for a retired key without one).
    pub access: Option<AccessKey>,
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
    /// The public key for verifying with jsonwebtoken.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) of `message`, with the key pair parsed
    /// once at load.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| KeyError::Generate("RS256 signing failed".into()))?;
        Ok(signature)
    }
}

/// One consistent view of the folder: keys, the active one, and the JWKS serialized once.
#[derive(Debug)]
struct Loaded {
    keys: Vec<Arc<SigningKey>>,
    active: usize,
    jwks: bytes::Bytes,
}

/// The signing keys of a deployment. Reloadable in place, so every process sharing `keys.dir`
/// picks up rotations; the active key follows from file names and time alone, so processes
/// with synchronised clocks agree on it without talking to each other.
#[derive(Debug)]
pub struct KeySet {
    dir: PathBuf,
    loaded: RwLock<Arc<Loaded>>,
}

/// When to add and retire keys automatically.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    /// Age of the newest key after which a successor is added.
    pub rotate_every: Duration,
    /// How long a new key is published before it signs (longer than any JWKS cache).
    pub publish_ahead: Duration,
    /// How long a superseded key stays published (at least the longest token lifetime).
    pub retire_after: Duration,
}

impl KeySet {
    /// Loads the folder, generating a first key when it holds none.
    pub fn load_or_generate(dir: &Path, now: OffsetDateTime) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(|cause| KeyError::Folder {
            path: dir.to_path_buf(),
            cause,
        })?;
        if list_key_files(dir)?.is_empty() {
            generate_first_key(dir, now)?;
        }
        Self::load(dir, now)
    }

    /// Loads the folder as it is; fails on any unreadable key or when none is active.
    pub fn load(dir: &Path, now: OffsetDateTime) -> Result<Self, KeyError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            loaded: RwLock::new(Arc::new(read_folder(dir, now)?)),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        // A poisoned lock still holds a complete, valid Loaded: the swap is one assignment.
        self.loaded
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Arc<SigningKey> {
        let loaded = self.current();
        // `read_folder` guarantees the index is in range.
        Arc::clone(&loaded.keys[loaded.active])
    }

    /// A published key by `kid`, for verifying our own tokens.
    pub fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.current()
            .keys
            .iter()
            .find(|k| k.kid == kid && k.state.is_published())
            .cloned()
    }

    /// A published ES256 access-token key by `kid`.
    pub fn find_access(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.current()
            .keys
            .iter()
            .find(|k| k.state.is_published() && k.access.as_ref().is_some_and(|a| a.kid == kid))
            .cloned()
    }

    /// Every key, oldest first (for `keys list`).
    pub fn all(&self) -> Vec<Arc<SigningKey>> {
        self.current().keys.clone()
    }

    /// The JWKS document, serialized at the last (re)load.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.current().jwks.clone()
    }

    /// Re-reads the folder. On failure the keys in use stay in use and the error is returned.
    pub fn reload(&self, now: OffsetDateTime) -> Result<(), KeyError> {
        let fresh = Arc::new(read_folder(&self.dir, now)?);
        match self.loaded.write() {
            Ok(mut slot) => *slot = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// Applies the rotation policy: pre-publishes a successor when the newest key is old,
    /// retires keys superseded long ago, then reloads.
    pub fn maintain(&self, now: OffsetDateTime, policy: RotationPolicy) -> Result<(), KeyError> {
        let loaded = self.current();
        let newest = loaded.keys.iter().rfind(|k| k.state.is_published());
        if newest.is_some_and(|k| now - k.activates_at >= policy.rotate_every) {
            let (path, at) = generate_key_file(&self.dir, now + policy.publish_ahead)?;
            tracing::info!(file = %path.display(), activates_at = %at, "pre-published a new signing key");
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
            crate::audit::emit(
                &crate::audit::RequestInfo::NONE,
                &crate::audit::Event::KeyRotation {
                    by: "schedule",
                    key: file.as_deref().unwrap_or_default(),
                },
            );
        }
        // A key is superseded when the next one activated; it retires `retire_after` later.
        for pair in loaded.keys.windows(2) {
            let (old, next) = (&pair[0], &pair[1]);
            if old.state == KeyState::Previous && now - next.activates_at >= policy.retire_after {
                let retired = old.path.with_extension("pem.retired");
                let companion = p256::companion_path(&old.path);
                // The companion first: it is the one a crash in between could leave published.
                if let Err(e) = std::fs::rename(&companion, p256::companion_path(&retired))
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(KeyError::Write {
                        path: companion,
                        cause: e,
                    });
                }
                match std::fs::rename(&old.path, &retired) {
                    Ok(()) => tracing::info!(kid = %old.kid, "retired a signing key"),
                    // Another process sharing the folder got there first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(cause) => {
                        return Err(KeyError::Write {
                            path: old.path.clone(),
                            cause,
                        });
                    }
                }
            }
        }
        self.reload(now)
    }
}

/// Whether `dir` holds no key file yet (or does not exist): a deployment before its first start.
pub fn folder_has_no_keys(dir: &Path) -> Result<bool, KeyError> {
    if !dir.exists() {
        return Ok(true);
    }
    Ok(list_key_files(dir)?.is_empty())
}

fn read_folder(dir: &Path, now: OffsetDateTime) -> Result<Loaded, KeyError> {
    let mut keys = Vec::new();
    for (path, activates_at, stored) in list_key_files(dir)? {
        let pem = std::fs::read_to_string(&path).map_err(|cause| KeyError::Read {
            path: path.clone(),
            cause,
        })?;
        keys.push(parse_key(path, &pem, activates_at, stored)?);
    }
    keys.sort_by_key(|k| k.activates_at);
    // The newest published key that has started; when none has, the earliest published one
    // (a key written a second ahead because another one took this second's name, or a clock a
    // little behind the process that wrote the folder's first key): signing a moment early
    // beats signing with nothing, or holding on to a revoked key.
    let active = keys
        .iter()
        .rposition(|k| k.state.is_published() && k.activates_at <= now)
        .or_else(|| keys.iter().position(|k| k.state.is_published()))
        .ok_or_else(|| KeyError::NoActiveKey(dir.to_path_buf()))?;
    for (i, key) in keys.iter_mut().enumerate() {
        if !key.state.is_published() {
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
        .filter(|k| k.state.is_published())
        .flat_map(|k| std::iter::once(&k.jwk).chain(k.access.as_ref().map(|a| &a.jwk)))
        .cloned()
        .collect();
    let jwks = serde_json::to_vec(&CoreJsonWebKeySet::new(published))
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .into();
    Ok(Loaded {
        keys: keys.into_iter().map(Arc::new).collect(),
        active,
        jwks,
    })
}

/// The file processes starting on an empty shared folder take turns with.
const FIRST_KEY_LOCK: &str = ".first-key.lock";
/// How long a process waits for another one writing the first key (RSA generation takes well
/// under a second; a lock older than this is left over from a crash and ignored).
const FIRST_KEY_WAIT: Duration = Duration::from_secs(10);

/// Writes the first key of an empty folder, once however many processes of a deployment start
/// at the same moment: each would otherwise write its own and publish the others' only at its
/// next reload, so tokens signed by one would not verify against another's JWKS meanwhile.
/// Whoever creates the lock file (`create_new`, atomic on a shared folder) writes the key if
/// the folder is still empty; the others wait for the lock to go and then find the key.
fn generate_first_key(dir: &Path, now: OffsetDateTime) -> Result<(), KeyError> {
    let lock = dir.join(FIRST_KEY_LOCK);
    let started = std::time::Instant::now();
    let mut held = false;
    while !held && started.elapsed() < FIRST_KEY_WAIT {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => held = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(cause) => {
                return Err(KeyError::Folder {
                    path: dir.to_path_buf(),
                    cause,
                });
            }
        }
    }
    let result = if list_key_files(dir)?.is_empty() {
        generate_key_file(dir, now).map(|_| {
            tracing::info!(dir = %dir.display(), "generated a first RSA-2048 signing key");
        })
    } else {
        Ok(())
    };
    // Removed also after a wait that timed out: that lock was left by a process that died.
    let _ = std::fs::remove_file(&lock);
    result
}

#[cfg(test)]
mod tests;
