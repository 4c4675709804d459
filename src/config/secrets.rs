//! `[secrets]`: the keys kept Discord tokens are sealed and opened with, and the keys derived
//! from them (pairwise subjects, DPoP nonces).
//!
//! `encryption_keys` (newest first) and the single `encryption_key` of earlier releases work
//! together: every key opens, the first listed seals (or `encryption_key` when none is listed).
//! Pairwise subjects are derived from `encryption_key` alone, so they stay the same while the
//! keys that seal rotate: a deployment with pairwise clients keeps `encryption_key` for good.

use super::SecretSettings;
use super::validate::Checker;
use secrecy::{ExposeSecret, SecretString};

/// The checked keys.
pub(super) struct Secrets {
    /// `secrets.encryption_key`, when set.
    pub first: Option<[u8; 32]>,
    /// Every key that opens, the one that seals first (duplicates dropped).
    pub keys: Vec<[u8; 32]>,
}

/// Checks `[secrets]`, reporting each malformed key by its path.
pub(super) fn check(c: &mut Checker, secrets: &SecretSettings) -> Secrets {
    let first = check_key(c, "secrets.encryption_key", &secrets.encryption_key);
    let mut keys = Vec::new();
    for (i, raw) in secrets.encryption_keys.iter().enumerate() {
        let name = format!("secrets.encryption_keys[{i}]");
        if raw.expose_secret().is_empty() {
            c.problem(name, "must not be empty (remove the entry instead)");
        } else if let Some(k) = check_key(c, &name, raw)
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    if let Some(k) = first
        && !keys.contains(&k)
    {
        keys.push(k);
    }
    Secrets { first, keys }
}

impl Secrets {
    /// The pairwise-subject key: from `encryption_key` only (see the module docs).
    pub fn pairwise_key(&self) -> Option<[u8; 32]> {
        self.first
            .map(|k| derive_key(&k, b"guildgate pairwise subject v1"))
    }

    /// The DPoP nonce key: from `encryption_key`, else the oldest listed key (the one that
    /// changes last as keys rotate; a changed nonce key only costs apps one retry), else drawn
    /// once per process.
    pub fn dpop_nonce_key(&self) -> [u8; 32] {
        match self.first.or(self.keys.last().copied()) {
            Some(k) => derive_key(&k, b"guildgate dpop nonce v1"),
            None => process_nonce_key(),
        }
    }
}

/// Without an encryption key to derive it from, the DPoP nonce key is drawn once per process,
/// so a reload does not invalidate the nonces already handed out.
fn process_nonce_key() -> [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *KEY.get_or_init(rand::random)
}

/// HMAC-SHA256(key, label): a separate key for a separate job.
fn derive_key(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        label,
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(mac.as_ref());
    out
}

/// 64 hex characters → 32 bytes; empty → `None` without a problem.
fn check_key(c: &mut Checker, name: &str, key: &SecretString) -> Option<[u8; 32]> {
    let raw = key.expose_secret();
    if raw.is_empty() {
        return None;
    }
    let decoded = (raw.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(raw.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .and_then(|v| <[u8; 32]>::try_from(v).ok());
    if decoded.is_none() {
        c.problem(
            name,
            "must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`",
        );
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(first: &str, listed: &[&str]) -> SecretSettings {
        SecretSettings {
            encryption_key: SecretString::from(first.to_owned()),
            encryption_keys: listed
                .iter()
                .map(|k| SecretString::from((*k).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_first_listed_key_seals_and_the_pairwise_key_follows_encryption_key_only() {
        // Arrange
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let mut c = Checker::default();

        // Act
        let before = check(&mut c, &settings(&a, &[]));
        let rotating = check(&mut c, &settings(&a, &[&b]));
        let listed_both = check(&mut c, &settings(&a, &[&b, &a]));

        // Assert
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(before.keys, vec![[0xaa; 32]]);
        assert_eq!(
            rotating.keys,
            vec![[0xbb; 32], [0xaa; 32]],
            "B seals, A opens"
        );
        assert_eq!(
            listed_both.keys, rotating.keys,
            "a key listed twice counts once"
        );
        assert_eq!(before.pairwise_key(), rotating.pairwise_key());
        assert_eq!(before.dpop_nonce_key(), rotating.dpop_nonce_key());
    }

    #[test]
    fn each_malformed_listed_key_is_named_by_its_index() {
        // Arrange
        let mut c = Checker::default();

        // Act
        let checked = check(&mut c, &settings("", &["abc", "", &"cc".repeat(32)]));

        // Assert
        let keys: Vec<&str> = c.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["secrets.encryption_keys[0]", "secrets.encryption_keys[1]"]
        );
        assert_eq!(checked.keys, vec![[0xcc; 32]]);
        assert!(
            checked.pairwise_key().is_none(),
            "no encryption_key, no pairwise key"
        );
    }
}
