//! Discord snowflakes: the identity of users, guilds and roles.

use serde::{Serialize, Serializer};
use std::fmt;

/// A Discord snowflake id: 17 to 20 ASCII digits that fit in a `u64`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiscordId(String);

impl DiscordId {
    /// Accepts only what Discord issues, so a typo in config fails at start-up.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let digits_only = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || !(17..=20).contains(&raw.len()) || raw.parse::<u64>().is_err() {
            return Err(format!(
                "{raw:?} is not a Discord id (a snowflake of 17-20 digits)"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as Discord writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DiscordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscordId({})", self.0)
    }
}

impl fmt::Display for DiscordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// As the plain snowflake string (for pages and JSON), the way Discord writes it.
impl Serialize for DiscordId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_snowflakes_and_rejects_the_rest() {
        assert!(DiscordId::parse("123456789012345678").is_ok());
        for bad in [
            "",
            "abc",
            "12345",
            "-123456789012345678",
            "123456789012345678901",
        ] {
            assert!(DiscordId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
