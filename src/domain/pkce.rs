//! PKCE (RFC 7636): S256 challenges and verifiers; `plain` is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// RFC 7636 §4.1: 43-128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_verifier_shaped(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A `code_challenge` sent with `code_challenge_method=S256`: base64url of a SHA-256 (43 chars).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// Accepts only the S256 form.
    pub fn parse_s256(raw: &str) -> Result<Self, &'static str> {
        let decoded = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| "code_challenge is not base64url")?;
        if raw.len() != 43 || decoded.len() != 32 {
            return Err(
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            );
        }
        Ok(Self(raw.to_owned()))
    }

    /// The challenge string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The challenge for a verifier (used to send PKCE upstream to Discord).
    pub fn of(verifier: &PkceVerifier) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes())))
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`.
    pub fn is_satisfied_by(&self, verifier: &PkceVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes()));
        constant_time_eq(computed.as_bytes(), self.0.as_bytes())
    }
}

/// As the plain challenge string, so JSON written when it was a string still reads.
impl Serialize for PkceChallenge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PkceChallenge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse_s256(&raw).map_err(serde::de::Error::custom)
    }
}

/// A `code_verifier`.
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// Validates shape and length.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if is_verifier_shaped(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")
        }
    }

    /// A fresh random verifier (for our own upstream login to Discord).
    pub fn generate() -> Self {
        Self(super::OpaqueToken::generate().expose().to_owned())
    }

    /// The verifier string.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PkceVerifier(<redacted>)")
    }
}

/// Equal-length comparison that does not stop at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_example_verifies() {
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge =
            PkceChallenge::parse_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
        assert_eq!(PkceChallenge::of(&verifier), challenge);
    }

    #[test]
    fn a_wrong_verifier_fails() {
        let challenge =
            PkceChallenge::parse_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        let other =
            PkceVerifier::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(PkceVerifier::parse("short").is_err());
        assert!(PkceVerifier::parse(&"a".repeat(129)).is_err());
        assert!(PkceVerifier::parse(&format!("{}!", "a".repeat(50))).is_err());
        assert!(PkceChallenge::parse_s256("plain-challenge").is_err());
    }
}
