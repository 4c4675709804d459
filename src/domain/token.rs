//! Opaque bearer values (codes, refresh tokens, session cookies, upstream state) and their hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// A 256-bit random value handed to a browser or client; only its [`TokenHash`] is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    /// Draws 256 bits from the OS CSPRNG and encodes them base64url without padding (43 chars).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a value received from a client; it is only ever hashed and compared.
    pub fn from_presented(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, to put in a cookie, a redirect or a token response.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the value: what the store keeps and looks up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

// Redacted: a token in a log line is a stolen token.
impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(<redacted>)")
    }
}

/// base64url(SHA-256(value)): the stored, indexed form of an [`OpaqueToken`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes any presented string; unknown values simply match no row.
    pub fn of(value: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes())))
    }

    /// Rebuilds a hash read back from the store.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The encoded hash, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_43_url_safe_chars_and_distinct() {
        let a = OpaqueToken::generate();
        let b = OpaqueToken::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_stable_and_differs_from_the_value() {
        let t = OpaqueToken::from_presented("abc");
        assert_eq!(t.hash(), TokenHash::of("abc"));
        assert_ne!(t.hash().as_str(), "abc");
        // SHA-256("abc") in base64url, from FIPS 180-2's test vector.
        assert_eq!(
            t.hash().as_str(),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let t = OpaqueToken::from_presented("secret-value");
        assert!(!format!("{t:?}").contains("secret-value"));
    }
}
