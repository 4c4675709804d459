//! Client identifiers as registered in config.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A registered client's id: 1-128 characters from the URL-safe set, so it can sit in URLs,
/// HTTP Basic credentials and logs without escaping surprises.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// Parses a config value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        if raw.is_empty() || raw.len() > 128 || !raw.chars().all(ok_char) {
            return Err(format!(
                "{raw:?} is not a valid client id (1-128 of A-Z a-z 0-9 - . _ ~)"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// As the plain id, so JSON written when ids were strings still reads.
impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_url_safe_set_only() {
        assert!(ClientId::parse("wiki.example-app_1~").is_ok());
        for bad in ["", "has space", "slash/", &"a".repeat(129)] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn serde_uses_the_plain_string_and_checks_it() {
        let id = ClientId::parse("wiki").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""wiki""#);
        assert_eq!(serde_json::from_str::<ClientId>(r#""wiki""#).unwrap(), id);
        assert!(serde_json::from_str::<ClientId>(r#""not an id""#).is_err());
    }
}
