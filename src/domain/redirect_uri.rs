//! Redirect URIs: the registered form (strict rules) and the exact-match comparison.

use super::issuer::is_loopback;
use std::fmt;
use url::Url;

/// A registered redirect URI; matching a request is exact string comparison (RFC 9700 §4.1.3).
#[derive(Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// Schemes that run code or read files when a browser is sent to them.
const FORBIDDEN_SCHEMES: [&str; 4] = ["javascript", "data", "file", "vbscript"];

impl RedirectUri {
    /// Absolute, no fragment, no wildcard, no script/data/file scheme, `http` only for loopback.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('*') {
            return Err("wildcards are not allowed".into());
        }
        if raw.contains('#') {
            return Err("must not contain a fragment".into());
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".into());
        }
        let url = Url::parse(raw).map_err(|e| format!("not an absolute URI ({e})"))?;
        let scheme = url.scheme().to_ascii_lowercase();
        if FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
            return Err(format!("the {scheme}: scheme is not allowed"));
        }
        if scheme == "http" && !is_loopback(&url) {
            return Err("http is only allowed for loopback hosts; use https".into());
        }
        if (scheme == "http" || scheme == "https") && url.host().is_none() {
            return Err("must name a host".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Exact match, or for a loopback `http` URI of a native app, equal but for the port
    /// (RFC 8252 §7.3). `allow_loopback_port` is set only for public clients. The comparison
    /// is textual: nothing is normalised, so `..`, `%2e` or case tricks never match.
    pub fn matches(&self, requested: &str, allow_loopback_port: bool) -> bool {
        if self.0 == requested {
            return true;
        }
        if !allow_loopback_port || !self.0.starts_with("http://") {
            return false;
        }
        let is_loopback = Url::parse(&self.0).is_ok_and(|u| is_loopback(&u));
        match (without_port(&self.0), without_port(requested)) {
            (Some(registered), Some(asked)) => is_loopback && registered == asked,
            _ => false,
        }
    }
}

/// `http://host[:port]rest` → `http://hostrest`, only when the port is all digits.
fn without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    // `[::1]:8080` keeps its brackets; the port follows the last ':' outside them.
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = &authority[i + 1..];
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &authority[..i]
        }
        _ => authority,
    };
    Some(format!("http://{host}{tail}"))
}

impl fmt::Debug for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedirectUri({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_loopback_http_and_private_schemes() {
        for ok in [
            "https://wiki.example.com/oidc/callback",
            "http://127.0.0.1:5000/cb",
            "http://localhost/cb",
            "com.example.app:/callback",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn rejects_each_unsafe_form() {
        for bad in [
            "https://*.example.com/cb",
            "https://example.com/cb#frag",
            "/relative/cb",
            "http://example.com/cb",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "DATA:text/html,hi",
            "File:///etc/passwd",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn matching_is_exact() {
        let r = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(r.matches("https://app.example.com/cb", false));
        for near in [
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb/../cb",
            "https://app.example.com@evil.example/cb",
            "https://app.example.com/CB",
        ] {
            assert!(!r.matches(near, true), "{near} must not match");
        }
    }

    #[test]
    fn loopback_port_may_differ_only_when_allowed() {
        let r = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(r.matches("http://127.0.0.1:51234/cb", true));
        assert!(!r.matches("http://127.0.0.1:51234/cb", false));
        assert!(!r.matches("http://127.0.0.1:51234/other", true));
        assert!(!r.matches("http://user@127.0.0.1:51234/cb", true));
        assert!(!r.matches("http://127.0.0.1:51234/evil/../cb", true));
        assert!(!r.matches("http://127.0.0.1:51234/%63b", true));
        assert!(!r.matches("http://127.0.0.1:x/cb", true));
        let v6 = RedirectUri::parse("http://[::1]/cb").unwrap();
        assert!(v6.matches("http://[::1]:4000/cb", true));
    }
}
