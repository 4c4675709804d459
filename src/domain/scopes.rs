//! Scopes: the space-separated list of RFC 6749 §3.3, reduced to the ones we implement.

use std::fmt;

/// Every scope guildgate understands; others in a request are ignored (OIDC Core §3.1.2.1).
pub const SUPPORTED_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "groups",
    "connections",
    "offline_access",
];

/// A set of supported scopes in canonical order, so stored and compared forms are stable.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<&'static str>);

impl Scopes {
    /// Keeps the supported scopes of a request's `scope` value; unknown ones are dropped.
    pub fn parse_request(raw: &str) -> Self {
        Self(
            SUPPORTED_SCOPES
                .into_iter()
                .filter(|s| raw.split(' ').any(|r| r == *s))
                .collect(),
        )
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(&scope)
    }

    /// Whether every scope of `self` is in `other` (refresh may narrow, never widen).
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Whether no supported scope is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the scopes.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
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
    }
}
