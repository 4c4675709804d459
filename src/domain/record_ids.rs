//! Ids of the records guildgate creates itself: grants (token families) and SSO sessions.
//!
//! Both are random and public (a grant's id rides in access tokens as `gid`, a session's in ID
//! tokens as `sid`); neither is a secret. Distinct types keep a session id from being passed
//! where a grant id is meant, which plain strings allowed.

use serde::{Serialize, Serializer};
use std::fmt;

/// Longest id accepted when one is read back (ours are 32 characters).
const MAX_LEN: usize = 128;

/// Whether `raw` can be one of our ids: 1-128 characters of the URL-safe set, so it sits in
/// JWT claims, forms and logs without escaping.
fn is_id_shaped(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Writes a random-id newtype: `generate`, `parse`, `as_str`, `Display`, `Debug` and
/// `Serialize` (as the plain string).
macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id (a v4 UUID as 32 hex digits).
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().simple().to_string())
            }

            /// Reads an id back (from the store, a form or a token we signed); anything that
            /// cannot be one of ours is refused.
            pub fn parse(raw: &str) -> Result<Self, String> {
                if is_id_shaped(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(concat!("not a ", $what, " id (1-128 of A-Z a-z 0-9 - . _ ~)").to_owned())
                }
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// As the plain id (for pages and JSON).
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

record_id!(
    /// A grant's id: one token family issued to one client for one person (`gid` in our
    /// access tokens, so revoking the grant reaches them).
    GrantId,
    "grant"
);

record_id!(
    /// An SSO session's public id (`sid` in ID and logout tokens); unrelated to the secret in
    /// the session cookie.
    SessionId,
    "session"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_read_back_and_differ() {
        let a = GrantId::generate();
        assert_eq!(GrantId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, GrantId::generate());
        assert_eq!(SessionId::generate().as_str().len(), 32);
    }

    #[test]
    fn ids_that_cannot_be_ours_are_refused() {
        for bad in ["", "has space", "a/b", "ü", &"a".repeat(129)] {
            assert!(GrantId::parse(bad).is_err(), "{bad:?} should be rejected");
            assert!(SessionId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(SessionId::parse("4f8e3c1e-0b7a-4d61-9d55-2f0e2c6f9a10").is_ok());
    }
}
