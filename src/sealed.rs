//! Data at rest under AES-256-GCM (the Discord tokens kept for membership re-checks).
//!
//! Sealed form: 12-byte random nonce ‖ ciphertext ‖ 16-byte tag. The additional data binds a
//! sealed value to its row (the user id), so ciphertexts cannot be swapped between people.
//! A [`Keyring`] holds every configured key: the first seals, each one opens, so keys rotate
//! without a value becoming unreadable (`guildgate reencrypt` re-seals with the first).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};

/// Sealing or opening failed (wrong key, tampered data, wrong row).
#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened or written")]
pub struct SealError;

/// An AES-256-GCM key for data at rest.
pub struct Sealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// Builds the key from a configured key's 32 bytes.
    pub fn new(key: &[u8; 32]) -> Result<Self, SealError> {
        Ok(Self {
            key: RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| SealError)?,
        })
    }

    /// Encrypts `plaintext`, authenticating `aad` alongside.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut data = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut data)
            .map_err(|_| SealError)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Decrypts what [`Sealer::seal`] produced with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or(SealError)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError)?;
        let mut data = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut data)
            .map_err(|_| SealError)?;
        Ok(plain.to_vec())
    }
}

/// The configured keys: the first seals, every one opens (`secrets.encryption_keys`, newest
/// first, then `secrets.encryption_key`).
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<Sealer>,
}

/// A value opened by a [`Keyring`], and whether the key that opened it is the one that seals.
pub struct Opened {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// Sealed with the newest key: re-sealing it would change nothing.
    pub by_newest: bool,
}

impl Keyring {
    /// The keyring of `keys`, the sealing one first; `None` when there are none.
    pub fn new(keys: &[[u8; 32]]) -> Result<Option<Self>, SealError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let keys = keys.iter().map(Sealer::new).collect::<Result<_, _>>()?;
        Ok(Some(Self { keys }))
    }

    /// Seals with the newest key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.keys.first().ok_or(SealError)?.seal(plaintext, aad)
    }

    /// Opens with whichever key sealed it (the newest is tried first).
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Opened, SealError> {
        self.keys
            .iter()
            .enumerate()
            .find_map(|(i, key)| {
                key.open(sealed, aad).ok().map(|plaintext| Opened {
                    plaintext,
                    by_newest: i == 0,
                })
            })
            .ok_or(SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn sealed() -> (Sealer, Vec<u8>) {
        let sealer = Sealer::new(&KEY).unwrap();
        let sealed = sealer.seal(b"discord tokens", b"user-1").unwrap();
        (sealer, sealed)
    }

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_aad() {
        let (sealer, sealed) = sealed();
        assert_eq!(
            sealed.len(),
            NONCE_LEN + b"discord tokens".len() + 16,
            "nonce || ct || tag"
        );
        assert_eq!(sealer.open(&sealed, b"user-1").unwrap(), b"discord tokens");
    }

    #[test]
    fn another_key_cannot_open_it() {
        let (_, sealed) = sealed();
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, b"user-1").is_err());
    }

    #[test]
    fn another_row_cannot_open_it() {
        let (sealer, sealed) = sealed();
        assert!(sealer.open(&sealed, b"user-2").is_err(), "bound to its row");
        assert!(sealer.open(&sealed, b"").is_err());
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_refused() {
        let (sealer, sealed) = sealed();
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(sealer.open(&tampered, b"user-1").is_err(), "byte {i}");
        }
        assert!(sealer.open(&sealed[..sealed.len() - 1], b"user-1").is_err());
        assert!(
            sealer.open(&sealed[..5], b"user-1").is_err(),
            "shorter than a nonce"
        );
        assert!(sealer.open(&[], b"user-1").is_err());
    }

    #[test]
    fn sealing_the_same_plaintext_twice_differs() {
        let (sealer, sealed) = sealed();
        let again = sealer.seal(b"discord tokens", b"user-1").unwrap();
        assert_ne!(again, sealed, "fresh nonce each time");
        assert_ne!(again[..NONCE_LEN], sealed[..NONCE_LEN]);
    }

    #[test]
    fn a_keyring_seals_with_its_first_key_and_opens_with_any() {
        // Arrange: a value sealed under the old key alone.
        let old = Sealer::new(&KEY).unwrap().seal(b"t", b"u").unwrap();
        let ring = Keyring::new(&[[9u8; 32], KEY]).unwrap().unwrap();

        // Act
        let opened_old = ring.open(&old, b"u").unwrap();
        let resealed = ring.seal(&opened_old.plaintext, b"u").unwrap();
        let opened_new = ring.open(&resealed, b"u").unwrap();

        // Assert
        assert_eq!(opened_old.plaintext, b"t");
        assert!(!opened_old.by_newest);
        assert!(opened_new.by_newest);
        assert!(
            Sealer::new(&KEY).unwrap().open(&resealed, b"u").is_err(),
            "the new key sealed it"
        );
        assert!(Keyring::new(&[]).unwrap().is_none());
        assert!(ring.open(&old, b"other row").is_err());
    }

    #[test]
    fn debug_does_not_show_the_key() {
        assert_eq!(
            format!("{:?}", Sealer::new(&KEY).unwrap()),
            "Sealer(<redacted>)"
        );
    }
}
