//! JWK SHA-256 thumbprints (RFC 7638) naming the key a DPoP-bound token is bound to
//! (RFC 9449 §6.1, `cnf.jkt`).

use std::fmt;

/// base64url(SHA-256) of a key's canonical JWK: 43 characters of the base64url alphabet.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Jkt(String);

impl Jkt {
    /// Reads a thumbprint (from a token, a request's `dpop_jkt` or the store).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if raw.len() == 43 && raw.bytes().all(url_safe) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a JWK SHA-256 thumbprint"))
        }
    }

    /// The thumbprint as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jkt({})", self.0)
    }
}

impl serde::Serialize for Jkt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Jkt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_thumbprints_are_read() {
        assert!(Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").is_ok());
        for raw in [
            "",
            "short",
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I=",
            "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ] {
            assert!(Jkt::parse(raw).is_err(), "{raw:?}");
        }
    }
}
