//! Registered clients: lookup, redirect URI matching, and client authentication (RFC 6749 §2.3).

use crate::config::{ClientSecret, ValidClient};
use crate::domain::constant_time_eq;
use crate::limits::{KeyedLimiter, Limits, source_key};
use argon2::Params;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

mod secret_hash;

pub use secret_hash::hash_secret;
use secret_hash::{Argon2Runner, PreparedHash};

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
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "Basic({id}, <redacted>)"),
            Self::Post { id, .. } => write!(f, "Post({id}, <redacted>)"),
            Self::None { id } => write!(f, "None({id})"),
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

impl ClientCredentials {
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
            Self::Basic { id, .. } | Self::Post { id, .. } | Self::None { id } => id,
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

/// The limits one authentication is checked against, and who is asking.
#[derive(Debug, Clone, Copy)]
pub struct AuthAttempt {
    /// The address the request came from.
    pub source: IpAddr,
    /// `[limits]` from config.
    pub limits: Limits,
    /// The app clock's now.
    pub now: OffsetDateTime,
}

/// The registered clients, with a cache of secrets already verified by argon2, the bounded
/// argon2 runner and the failed-authentication limiters.
pub struct Clients {
    by_id: HashMap<String, Arc<ValidClient>>,
    /// Each `secret_hash`, parsed once.
    hashes: HashMap<String, Arc<PreparedHash>>,
    /// client id → SHA-256 of the secret that last passed argon2, so argon2 runs once per
    /// secret rather than on every token request.
    verified: RwLock<HashMap<String, [u8; 32]>>,
    /// Checked for unknown clients with the cost of a real hash, so they take as long as wrong
    /// secrets; it matches no secret.
    decoy: Arc<PreparedHash>,
    argon2: Argon2Runner,
    /// Shared with the registry a reload replaces, so failures keep counting across reloads.
    failures_by_source: Arc<KeyedLimiter<IpAddr>>,
    failures_by_client: Arc<KeyedLimiter<String>>,
}

impl Clients {
    /// Builds the registry from validated config; `previous` (the registry a reload replaces)
    /// lends its failed-authentication budgets. Verified secrets are not carried over: a
    /// reload may have changed them.
    pub fn new(clients: &[ValidClient], previous: Option<&Clients>) -> Self {
        let by_id: HashMap<String, Arc<ValidClient>> = clients
            .iter()
            .map(|c| (c.id.as_str().to_owned(), Arc::new(c.clone())))
            .collect();
        let hashes: HashMap<String, Arc<PreparedHash>> = clients
            .iter()
            .filter_map(|c| match &c.secret {
                ClientSecret::Hash(phc) => match PreparedHash::parse(phc) {
                    Some(prepared) => Some((c.id.as_str().to_owned(), Arc::new(prepared))),
                    None => {
                        tracing::error!(client_id = %c.id, "secret_hash cannot be used; this client cannot authenticate");
                        None
                    }
                },
                _ => None,
            })
            .collect();
        // The decoy costs what the registered hashes cost (the first one's parameters).
        let decoy_params = hashes
            .values()
            .next()
            .map_or_else(Params::default, |h| h.params.clone());
        let decoy = Arc::new(PreparedHash::decoy(decoy_params));
        let block_count = hashes
            .values()
            .map(|h| h.params.block_count())
            .chain(std::iter::once(decoy.params.block_count()))
            .max()
            .unwrap_or_default();
        Self {
            by_id,
            hashes,
            verified: RwLock::new(HashMap::new()),
            decoy,
            argon2: Argon2Runner::new(block_count),
            failures_by_source: previous
                .map_or_else(Default::default, |p| p.failures_by_source.clone()),
            failures_by_client: previous
                .map_or_else(Default::default, |p| p.failures_by_client.clone()),
        }
    }

    /// A client by id.
    pub fn get(&self, id: &str) -> Option<Arc<ValidClient>> {
        self.by_id.get(id).cloned()
    }

    /// Authenticates a token-endpoint request. Unknown clients and wrong secrets fail alike,
    /// after the same argon2 work.
    ///
    /// Failed attempts are counted per source address and per registered client id, and argon2
    /// never runs for a source or client over its budget: the answer is `TooManyFailures`
    /// instead. A source over budget is refused before anything else (no oracle on the secret);
    /// a client over budget still accepts a secret that needs no argon2 (one verified earlier,
    /// or a plain dev secret), so strangers failing against a client id cannot lock out the
    /// app that holds the real secret once it has authenticated since start-up.
    pub async fn authenticate(
        &self,
        credentials: ClientCredentials,
        attempt: AuthAttempt,
    ) -> Result<Arc<ValidClient>, ClientAuthError> {
        let source = source_key(attempt.source);
        let limits = attempt.limits;
        let now = attempt.now;
        if let Some(wait) = self
            .failures_by_source
            .wait(&source, limits.failed_auth_per_ip, now)
        {
            return Err(ClientAuthError::TooManyFailures { retry_after: wait });
        }
        let outcome = self.check(&credentials, source, attempt).await;
        match outcome {
            Check::Passed(client) => Ok(client),
            Check::Throttled(retry_after) => Err(ClientAuthError::TooManyFailures { retry_after }),
            Check::Failed { client } => {
                self.failures_by_source
                    .spend(&source, limits.failed_auth_per_ip, now);
                if let Some(id) = client {
                    self.failures_by_client
                        .spend(&id, limits.failed_auth_per_client, now);
                }
                Err(ClientAuthError::Failed)
            }
        }
    }

    async fn check(
        &self,
        credentials: &ClientCredentials,
        source: IpAddr,
        attempt: AuthAttempt,
    ) -> Check {
        let secret = match credentials {
            ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => {
                Some(secret.as_str())
            }
            ClientCredentials::None { .. } => None,
        };
        let Some(client) = self.get(credentials.id()) else {
            if let Some(secret) = secret {
                match self.argon2_slot(source, None, attempt).await {
                    Err(wait) => return Check::Throttled(wait),
                    Ok(Some(slot)) => {
                        let _ = self.argon2.verify(slot, self.decoy.clone(), secret).await;
                    }
                    Ok(None) => {}
                }
            }
            return Check::Failed { client: None };
        };
        let id = client.id.as_str().to_owned();
        let failed = Check::Failed {
            client: Some(id.clone()),
        };
        match (&client.secret, secret) {
            (ClientSecret::Public, None) => Check::Passed(client),
            (ClientSecret::Public, Some(_)) | (_, None) => failed,
            (ClientSecret::Plain(expected), Some(secret)) => {
                if constant_time_eq(expected.expose_secret().as_bytes(), secret.as_bytes()) {
                    Check::Passed(client)
                } else if let Some(wait) = self.client_wait(&id, attempt) {
                    Check::Throttled(wait)
                } else {
                    failed
                }
            }
            (ClientSecret::Hash(_), Some(secret)) => {
                let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
                if self.is_cached(&id, &digest) {
                    return Check::Passed(client);
                }
                let slot = match self.argon2_slot(source, Some(&id), attempt).await {
                    Err(wait) => return Check::Throttled(wait),
                    Ok(slot) => slot,
                };
                // Another request may have verified this secret while we waited our turn.
                if self.is_cached(&id, &digest) {
                    return Check::Passed(client);
                }
                let (Some(slot), Some(hash)) = (slot, self.hashes.get(&id).cloned()) else {
                    return failed;
                };
                if self.argon2.verify(slot, hash, secret).await {
                    if let Ok(mut map) = self.verified.write() {
                        map.insert(id, digest);
                    }
                    Check::Passed(client)
                } else {
                    failed
                }
            }
        }
    }

    fn is_cached(&self, id: &str, digest: &[u8; 32]) -> bool {
        self.verified
            .read()
            .ok()
            .and_then(|m| m.get(id).copied())
            .is_some_and(|known| constant_time_eq(&known, digest))
    }

    fn client_wait(&self, id: &str, attempt: AuthAttempt) -> Option<Duration> {
        self.failures_by_client.wait(
            &id.to_owned(),
            attempt.limits.failed_auth_per_client,
            attempt.now,
        )
    }

    /// Takes an argon2 slot, then re-checks the budgets: requests queued behind failures of
    /// the same source or client are refused without running argon2.
    async fn argon2_slot(
        &self,
        source: IpAddr,
        client: Option<&str>,
        attempt: AuthAttempt,
    ) -> Result<Option<OwnedSemaphorePermit>, Duration> {
        let budget = |s: &Self| {
            s.failures_by_source
                .wait(&source, attempt.limits.failed_auth_per_ip, attempt.now)
                .or_else(|| client.and_then(|id| s.client_wait(id, attempt)))
        };
        if let Some(wait) = budget(self) {
            return Err(wait);
        }
        let permit = self.argon2.slot().await;
        match budget(self) {
            Some(wait) => Err(wait),
            None => Ok(permit),
        }
    }
}

/// What checking one set of credentials found.
enum Check {
    Passed(Arc<ValidClient>),
    /// Refused before argon2: the source or the client is over its failure budget.
    Throttled(Duration),
    /// Wrong credentials (for this registered client id, if it is one).
    Failed {
        client: Option<String>,
    },
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
