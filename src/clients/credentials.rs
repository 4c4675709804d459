//! How a request presents client credentials (RFC 6749 §2.3, RFC 7523 §2.2): exactly one
//! method, read from the `Authorization` header and the form fields.

use super::assertion::{self, ASSERTION_TYPE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::time::Duration;

/// How a request presented client credentials; exactly one method per request (RFC 6749 §2.3).
#[derive(PartialEq, Eq)]
pub enum ClientCredentials {
    /// `client_secret_basic`.
    Basic {
        /// Decoded client id.
        id: String,
        /// Decoded secret.
        secret: String,
    },
    /// `client_secret_post`.
    Post {
        /// `client_id` form field.
        id: String,
        /// `client_secret` form field.
        secret: String,
    },
    /// `none`: a public client names itself.
    None {
        /// `client_id` form field.
        id: String,
    },
    /// `private_key_jwt`: a JWT signed with one of the client's keys (RFC 7523).
    Assertion {
        /// `client_id` form field, or the assertion's `sub`.
        id: String,
        /// `client_assertion`.
        assertion: String,
    },
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "Basic({id}, <redacted>)"),
            Self::Post { id, .. } => write!(f, "Post({id}, <redacted>)"),
            Self::None { id } => write!(f, "None({id})"),
            Self::Assertion { id, .. } => write!(f, "Assertion({id}, <redacted>)"),
        }
    }
}

/// Why client authentication failed (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthError {
    /// The request is malformed (two methods at once, a `client_id` contradicting the header,
    /// a secret without `client_id`): `invalid_request`.
    Malformed(&'static str),
    /// The `Authorization` header cannot be read as Basic credentials (no colon, bad base64,
    /// empty, another scheme): `invalid_client`, 401, like any failed authentication.
    BadHeader(&'static str),
    /// Unknown client, wrong secret, or the wrong method for this client: `invalid_client`.
    Failed,
    /// Too many failed attempts from this source or against this client: 429, try later.
    TooManyFailures {
        /// How long until an attempt will be considered again.
        retry_after: Duration,
    },
}

/// The credential parts of a request: the `Authorization` header and the form fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct PresentedParts<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `client_secret`.
    pub client_secret: Option<&'a str>,
    /// `client_assertion_type`.
    pub assertion_type: Option<&'a str>,
    /// `client_assertion`.
    pub assertion: Option<&'a str>,
}

impl ClientCredentials {
    /// Reads credentials from the request's parts (RFC 6749 §2.3: one method per request).
    pub fn read(parts: PresentedParts<'_>) -> Result<Self, ClientAuthError> {
        match (parts.assertion_type, parts.assertion) {
            (None, None) => {
                Self::from_parts(parts.authorization, parts.client_id, parts.client_secret)
            }
            (Some(_), None) | (None, Some(_)) => Err(ClientAuthError::Malformed(
                "client_assertion and client_assertion_type go together",
            )),
            (Some(kind), Some(_)) if kind != ASSERTION_TYPE => Err(ClientAuthError::Malformed(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )),
            (Some(_), Some(_))
                if parts.authorization.is_some() || parts.client_secret.is_some() =>
            {
                Err(ClientAuthError::Malformed(
                    "use one client authentication method, not both",
                ))
            }
            (Some(_), Some(assertion)) => {
                let claimed = assertion::claimed_client(assertion);
                let id = match (parts.client_id, claimed) {
                    (Some(id), Some(sub)) if id != sub => {
                        return Err(ClientAuthError::Malformed(
                            "client_id does not match the client assertion",
                        ));
                    }
                    (Some(id), _) => id.to_owned(),
                    (None, Some(sub)) => sub,
                    (None, None) => return Err(ClientAuthError::Failed),
                };
                Ok(Self::Assertion {
                    id,
                    assertion: assertion.to_owned(),
                })
            }
        }
    }

    /// Reads credentials from the `Authorization` header and the form fields.
    pub fn from_parts(
        authorization: Option<&str>,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> Result<Self, ClientAuthError> {
        match (authorization, form_secret) {
            (Some(_), Some(_)) => Err(ClientAuthError::Malformed(
                "use one client authentication method, not both",
            )),
            (Some(header), None) => {
                let (id, secret) = parse_basic(header)?;
                if form_id.is_some_and(|f| f != id) {
                    return Err(ClientAuthError::Malformed(
                        "client_id does not match the Authorization header",
                    ));
                }
                Ok(Self::Basic { id, secret })
            }
            (None, Some(secret)) => match form_id {
                Some(id) => Ok(Self::Post {
                    id: id.to_owned(),
                    secret: secret.to_owned(),
                }),
                None => Err(ClientAuthError::Malformed("client_id is missing")),
            },
            (None, None) => match form_id {
                Some(id) => Ok(Self::None { id: id.to_owned() }),
                None => Err(ClientAuthError::Failed),
            },
        }
    }

    /// The client id the request claims.
    pub fn id(&self) -> &str {
        match self {
            Self::Basic { id, .. }
            | Self::Post { id, .. }
            | Self::None { id }
            | Self::Assertion { id, .. } => id,
        }
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn parse_basic(header: &str) -> Result<(String, String), ClientAuthError> {
    let malformed = ClientAuthError::BadHeader("malformed Basic credentials");
    let (scheme, value) = header.trim().split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ClientAuthError::BadHeader(
            "client authentication must use the Basic scheme",
        ));
    }
    let decoded = STANDARD.decode(value.trim()).map_err(|_| malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(malformed)?;
    let unescape = |s: &str| -> Result<String, ClientAuthError> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| malformed)
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() {
        return Err(ClientAuthError::BadHeader(
            "the Basic credentials name no client",
        ));
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my client" / "p@ss:word+1" form-encoded, then base64 (RFC 6749 §2.3.1).
        let raw = STANDARD.encode("my+client:p%40ss%3Aword%2B1");
        let creds =
            ClientCredentials::from_parts(Some(&format!("Basic {raw}")), None, None).unwrap();
        assert_eq!(
            creds,
            ClientCredentials::Basic {
                id: "my client".into(),
                secret: "p@ss:word+1".into()
            }
        );
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let raw = STANDARD.encode("a:b");
        let err =
            ClientCredentials::from_parts(Some(&format!("Basic {raw}")), Some("a"), Some("b"));
        assert!(matches!(err, Err(ClientAuthError::Malformed(_))));
    }

    #[test]
    fn malformed_basic_headers_are_client_authentication_failures() {
        for header in ["Basic", "Basic ", "Basic !!!", "Bearer abc", "Basic Og=="] {
            let got = ClientCredentials::from_parts(Some(header), None, None);
            assert!(
                matches!(got, Err(ClientAuthError::BadHeader(_))),
                "{header:?}: {got:?}"
            );
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let raw = STANDARD.encode("a:b");
        assert!(ClientCredentials::from_parts(Some(&format!("bAsIc {raw}")), None, None).is_ok());
    }
}
