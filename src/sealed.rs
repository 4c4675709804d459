//! Data at rest under AES-256-GCM (the Discord tokens kept for membership re-checks).
//!
//! Sealed form: 12-byte random nonce ‖ ciphertext ‖ 16-byte tag. The additional data binds a
//! sealed value to its row (the user id), so ciphertexts cannot be swapped between people.

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
    /// Builds the key from `secrets.encryption_key`'s 32 bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_tamper_fails() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal(b"discord tokens", b"user-1").unwrap();
        assert_eq!(sealer.open(&sealed, b"user-1").unwrap(), b"discord tokens");
        assert!(sealer.open(&sealed, b"user-2").is_err(), "bound to its row");
        assert!(
            Sealer::new(&[8u8; 32])
                .unwrap()
                .open(&sealed, b"user-1")
                .is_err(),
            "wrong key"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(sealer.open(&flipped, b"user-1").is_err(), "tampered");
        assert!(sealer.open(&sealed[..5], b"user-1").is_err(), "truncated");
        assert_ne!(
            sealer.seal(b"discord tokens", b"user-1").unwrap(),
            sealed,
            "fresh nonce each time"
        );
    }
}
