//! Client identifiers as registered in config.

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
