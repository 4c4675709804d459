//! Registered clients: lookup, redirect URI matching, and client authentication (RFC 6749 §2.3).

use crate::config::{AuthMethod, ClientKeys, ClientSecret, ValidClient};
use crate::domain::constant_time_eq;
use crate::limits::{KeyedLimiter, Limits, source_key};
use argon2::Params;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

pub mod assertion;
mod credentials;
pub mod jwks;
mod secret_hash;

pub use assertion::{ASSERTION_TYPE, AssertionUse, Audience};
pub use credentials::{ClientAuthError, ClientCredentials, PresentedParts};
pub use secret_hash::hash_secret;
use secret_hash::{Argon2Runner, PreparedHash};

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

/// A client that proved who it is, and the one-time id of the assertion it did it with (to be
/// spent in the store: a replayed assertion is refused in every process).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The client.
    pub client: Arc<ValidClient>,
    /// The `private_key_jwt` assertion's `jti` and expiry.
    pub assertion: Option<AssertionUse>,
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
    /// Keys fetched from clients' `jwks_uri`, kept across reloads.
    fetched_keys: Arc<jwks::KeyCache>,
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
            fetched_keys: previous.map_or_else(Default::default, |p| p.fetched_keys.clone()),
        }
    }

    /// A client by id.
    pub fn get(&self, id: &str) -> Option<Arc<ValidClient>> {
        self.by_id.get(id).cloned()
    }

    /// Whether client `id` has its ID tokens signed ES256 (`id_token_signed_response_alg`).
    pub fn signs_id_tokens_es256(&self, id: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|c| c.id_token_alg == crate::jws::Alg::ES256)
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
        audience: Audience<'_>,
    ) -> Result<Authenticated, ClientAuthError> {
        let source = source_key(attempt.source);
        let limits = attempt.limits;
        let now = attempt.now;
        if let Some(wait) = self
            .failures_by_source
            .wait(&source, limits.failed_auth_per_ip, now)
        {
            return Err(ClientAuthError::TooManyFailures { retry_after: wait });
        }
        let outcome = match &credentials {
            ClientCredentials::Assertion { id, assertion } => {
                self.check_assertion(id, assertion, audience, now).await
            }
            _ => self.check(&credentials, source, attempt).await,
        };
        match outcome {
            Check::Passed(client) => Ok(Authenticated {
                client,
                assertion: None,
            }),
            Check::Asserted(client, assertion) => Ok(Authenticated {
                client,
                assertion: Some(assertion),
            }),
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
            ClientCredentials::None { .. } | ClientCredentials::Assertion { .. } => None,
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
        // A client limited to one method (token_endpoint_auth_method) fails with any other,
        // after the same work as a wrong secret.
        if !method_allowed(client.auth_method, credentials) {
            tracing::info!(client_id = %id, "client authentication with a method this client may not use");
            return failed;
        }
        match (&client.secret, secret) {
            (ClientSecret::Public, None) => Check::Passed(client),
            (ClientSecret::Public, Some(_)) | (ClientSecret::KeysOnly, _) | (_, None) => failed,
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

    /// `private_key_jwt`: the assertion verifies with one of the client's keys (fetched again,
    /// at most once a minute, when it names a key the cached set lacks).
    async fn check_assertion(
        &self,
        id: &str,
        assertion: &str,
        audience: Audience<'_>,
        now: OffsetDateTime,
    ) -> Check {
        let Some(client) = self.get(id) else {
            return Check::Failed { client: None };
        };
        let failed = || Check::Failed {
            client: Some(client.id.as_str().to_owned()),
        };
        if client.auth_method != AuthMethod::PrivateKeyJwt {
            tracing::info!(client_id = %client.id, "client assertion from a client that does not use private_key_jwt");
            return failed();
        }
        let verify = |keys: &[jsonwebtoken::jwk::Jwk]| {
            assertion::verify(assertion, client.id.as_str(), keys, audience, now)
        };
        let verified = match &client.keys {
            Some(ClientKeys::Inline(set)) => verify(&set.keys),
            Some(ClientKeys::Uri(url)) => {
                let first = match self.fetched_keys.keys(url, jwks::Want::Current, now).await {
                    Ok(keys) => verify(&keys),
                    Err(e) => {
                        tracing::warn!(client_id = %client.id, error = %e, "no keys to check a client assertion with");
                        return failed();
                    }
                };
                match first {
                    Err(assertion::AssertionError::UnknownKey) => {
                        match self.fetched_keys.keys(url, jwks::Want::Newer, now).await {
                            Ok(keys) => verify(&keys),
                            Err(_) => first,
                        }
                    }
                    other => other,
                }
            }
            None => Err(assertion::AssertionError::Invalid("the client has no keys")),
        };
        match verified {
            Ok(used) => Check::Asserted(client, used),
            Err(e) => {
                tracing::info!(client_id = %client.id, reason = ?e, "client assertion refused");
                failed()
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

/// Whether `method` (the client's `token_endpoint_auth_method`) admits these credentials.
fn method_allowed(method: AuthMethod, credentials: &ClientCredentials) -> bool {
    use ClientCredentials as C;
    matches!(
        (method, credentials),
        (AuthMethod::None, C::None { .. })
            | (AuthMethod::ClientSecret, C::Basic { .. } | C::Post { .. })
            | (AuthMethod::ClientSecretBasic, C::Basic { .. })
            | (AuthMethod::ClientSecretPost, C::Post { .. })
            | (AuthMethod::PrivateKeyJwt, C::Assertion { .. })
    )
}

/// What checking one set of credentials found.
enum Check {
    Passed(Arc<ValidClient>),
    /// A valid `private_key_jwt` assertion, whose `jti` is still to be spent.
    Asserted(Arc<ValidClient>, AssertionUse),
    /// Refused before argon2: the source or the client is over its failure budget.
    Throttled(Duration),
    /// Wrong credentials (for this registered client id, if it is one).
    Failed {
        client: Option<String>,
    },
}
