//! Scopes: the space-separated list of RFC 6749 §3.3, reduced to the ones we implement.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Every scope guildgate understands; others in a request are ignored (OIDC Core §3.1.2.1).
/// The order is the canonical one: sets are written (and stored) in it.
pub const SUPPORTED_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "groups",
    "connections",
    "offline_access",
];

/// A set of supported scopes: one bit per entry of [`SUPPORTED_SCOPES`], so it is `Copy`,
/// compares by value, and always writes itself in canonical order.
///
/// Its text form (`Display`, serde, the store's `scopes` columns) is the canonical,
/// space-separated list, e.g. `openid profile email`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// The bit of a supported scope.
    fn bit(scope: &str) -> Option<u8> {
        SUPPORTED_SCOPES
            .iter()
            .position(|s| *s == scope)
            .map(|i| 1 << i)
    }

    /// Keeps the supported scopes of a request's `scope` value; unknown ones are dropped
    /// (OIDC Core §3.1.2.1). Matching is exact and case-sensitive.
    pub fn parse_request(raw: &str) -> Self {
        Self(
            raw.split(' ')
                .filter_map(Self::bit)
                .fold(0, |set, b| set | b),
        )
    }

    /// Reads a set written by [`Display`](fmt::Display) (a stored or serialized value). Unlike
    /// a request, a stored set names only scopes we support: any other word means the value
    /// is not ours, and is refused rather than silently narrowed.
    pub fn from_stored(raw: &str) -> Result<Self, String> {
        raw.split(' ')
            .filter(|word| !word.is_empty())
            .try_fold(0, |set, word| {
                Self::bit(word)
                    .map(|b| set | b)
                    .ok_or_else(|| format!("{word:?} is not a supported scope"))
            })
            .map(Self)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        Self::bit(scope).is_some_and(|b| self.0 & b != 0)
    }

    /// The same set without `scope`.
    pub fn without(self, scope: &str) -> Self {
        Self(self.0 & !Self::bit(scope).unwrap_or(0))
    }

    /// Every scope in either set.
    pub fn union(self, other: Scopes) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every scope of `self` is in `other` (refresh may narrow, never widen).
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether no supported scope is present.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The scopes, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + use<> {
        let set = self.0;
        SUPPORTED_SCOPES
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| set & (1 << i) != 0)
            .map(|(_, s)| s)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// As its text form, so JSON written before `Scopes` was a type (a plain string) still reads.
impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::from_stored(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_known_scopes_in_canonical_order_and_drops_the_rest() {
        let s = Scopes::parse_request("email openid unknown profile");
        assert_eq!(s.to_string(), "openid profile email");
        assert!(s.contains("openid"));
        assert!(!s.contains("unknown"));
    }

    #[test]
    fn matching_is_exact_and_case_sensitive() {
        assert!(Scopes::parse_request("OpenID openid2").is_empty());
    }

    #[test]
    fn subset_allows_narrowing_only() {
        let all = Scopes::parse_request("openid profile email");
        assert!(Scopes::parse_request("openid email").is_subset_of(&all));
        assert!(!Scopes::parse_request("openid groups").is_subset_of(&all));
        assert!(Scopes::default().is_subset_of(&all));
    }

    #[test]
    fn without_removes_one_scope_and_ignores_unknown_ones() {
        let s = Scopes::parse_request("openid offline_access email");
        assert_eq!(s.without("offline_access").to_string(), "openid email");
        assert_eq!(s.without("nope"), s);
    }

    #[test]
    fn the_stored_form_round_trips_and_refuses_what_is_not_ours() {
        for text in [
            "",
            "openid",
            "openid profile email groups connections offline_access",
        ] {
            let read = Scopes::from_stored(text).unwrap();
            assert_eq!(read.to_string(), text);
        }
        assert!(Scopes::from_stored("openid admin").is_err());
        assert!(Scopes::from_stored("OPENID").is_err());
    }

    #[test]
    fn serde_uses_the_plain_text_form() {
        let s = Scopes::parse_request("profile openid");
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""openid profile""#);
        let back: Scopes = serde_json::from_str(r#""openid profile""#).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Scopes>(r#""openid root""#).is_err());
    }
}
