//! The issuer identifier: the exact string every token's `iss` and discovery's `issuer` carry.

use std::fmt;
use url::Url;

/// A validated issuer URL, kept byte-identical to the configured string (OIDC Discovery §4.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    raw: String,
    base: String,
    secure: bool,
}

impl Issuer {
    /// Absolute http(s) URL without query or fragment; https unless the host is loopback.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("not an absolute URL ({e})"))?;
        if url.query().is_some() || raw.contains('?') {
            return Err("must not contain a query".into());
        }
        if url.fragment().is_some() || raw.contains('#') {
            return Err("must not contain a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err("must use https unless the host is loopback".into()),
            other => return Err(format!("scheme {other:?} is not http(s)")),
        }
        Ok(Self {
            raw: raw.to_owned(),
            base: raw.trim_end_matches('/').to_owned(),
            secure: url.scheme() == "https",
        })
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// An endpoint URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.secure
    }

    /// The origin (`scheme://host[:port]`, RFC 6454) browsers send in `Origin` from our pages.
    pub fn origin(&self) -> String {
        Url::parse(&self.raw)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The path component (for cookie scoping), always starting with `/`.
    pub fn path(&self) -> String {
        Url::parse(&self.raw)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| "/".to_owned())
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({})", self.raw)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`: the hosts RFC 8252 §7.3 treats as loopback.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_configured_string_and_builds_endpoints() {
        let i = Issuer::parse("https://id.example.com/").unwrap();
        assert_eq!(i.as_str(), "https://id.example.com/");
        assert_eq!(i.endpoint("/token"), "https://id.example.com/token");
        assert!(i.is_https());
    }

    #[test]
    fn accepts_http_only_for_loopback() {
        assert!(Issuer::parse("http://localhost:8080").is_ok());
        assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
        assert!(Issuer::parse("http://[::1]:8080").is_ok());
        assert!(Issuer::parse("http://id.example.com").is_err());
    }

    #[test]
    fn rejects_query_fragment_relative_and_other_schemes() {
        for bad in [
            "https://id.example.com/?x=1",
            "https://id.example.com/#f",
            "/relative",
            "ftp://id.example.com",
            "https://user:pw@id.example.com",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
