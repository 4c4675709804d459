//! Registered clients: lookup, redirect URI matching, and client authentication (RFC 6749 §2.3).

use crate::config::{ClientSecret, ValidClient};
use crate::domain::constant_time_eq;
use crate::telemetry::spawn_blocking_with_tracing;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

/// Why client authentication failed; every variant becomes the same `invalid_client` answer
/// except a malformed request, which is `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthError {
    /// Credentials were malformed or sent by more than one method.
    Malformed(&'static str),
    /// Unknown client, wrong secret, or the wrong method for this client.
    Failed,
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
    let malformed = ClientAuthError::Malformed("malformed Basic credentials");
    let (scheme, value) = header.trim().split_once(' ').ok_or(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ClientAuthError::Malformed(
            "unsupported Authorization scheme",
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
    Ok((unescape(id)?, unescape(secret)?))
}

/// The registered clients, with a cache of secrets already verified by argon2.
pub struct Clients {
    by_id: HashMap<String, Arc<ValidClient>>,
    /// client id → SHA-256 of the secret that last passed argon2, so argon2 runs once per
    /// secret rather than on every token request.
    verified: RwLock<HashMap<String, [u8; 32]>>,
    /// A real argon2 hash checked for unknown clients, so they take as long as wrong secrets.
    decoy_hash: String,
}

impl Clients {
    /// Builds the registry from validated config.
    pub fn new(clients: &[ValidClient]) -> Self {
        let by_id = clients
            .iter()
            .map(|c| (c.id.as_str().to_owned(), Arc::new(c.clone())))
            .collect();
        Self {
            by_id,
            verified: RwLock::new(HashMap::new()),
            decoy_hash: hash_secret("guildgate-decoy-secret-for-timing").unwrap_or_default(),
        }
    }

    /// A client by id.
    pub fn get(&self, id: &str) -> Option<Arc<ValidClient>> {
        self.by_id.get(id).cloned()
    }

    /// Authenticates a token-endpoint request. Unknown clients and wrong secrets fail alike,
    /// after the same argon2 work.
    pub async fn authenticate(
        &self,
        credentials: ClientCredentials,
    ) -> Result<Arc<ValidClient>, ClientAuthError> {
        let Some(client) = self.get(credentials.id()) else {
            self.burn_decoy(&credentials).await;
            return Err(ClientAuthError::Failed);
        };
        let ok = match (&client.secret, &credentials) {
            (ClientSecret::Public, ClientCredentials::None { .. }) => true,
            (ClientSecret::Public, _) | (_, ClientCredentials::None { .. }) => false,
            (ClientSecret::Plain(expected), ClientCredentials::Basic { secret, .. })
            | (ClientSecret::Plain(expected), ClientCredentials::Post { secret, .. }) => {
                use secrecy::ExposeSecret;
                constant_time_eq(expected.expose_secret().as_bytes(), secret.as_bytes())
            }
            (ClientSecret::Hash(hash), ClientCredentials::Basic { secret, .. })
            | (ClientSecret::Hash(hash), ClientCredentials::Post { secret, .. }) => {
                self.verify_hashed(client.id.as_str(), hash, secret).await
            }
        };
        if ok {
            Ok(client)
        } else {
            Err(ClientAuthError::Failed)
        }
    }

    async fn verify_hashed(&self, id: &str, hash: &str, secret: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let cached = self
            .verified
            .read()
            .ok()
            .and_then(|m| m.get(id).copied())
            .is_some_and(|known| constant_time_eq(&known, &digest));
        if cached {
            return true;
        }
        let ok = argon2_verify(hash.to_owned(), secret.to_owned()).await;
        if ok {
            if let Ok(mut map) = self.verified.write() {
                map.insert(id.to_owned(), digest);
            }
        }
        ok
    }

    async fn burn_decoy(&self, credentials: &ClientCredentials) {
        let secret = match credentials {
            ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => {
                secret.clone()
            }
            ClientCredentials::None { .. } => return,
        };
        let _ = argon2_verify(self.decoy_hash.clone(), secret).await;
    }
}

/// argon2id PHC string with the crate's defaults (OWASP's m=19 MiB, t=2, p=1).
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the secret: {e}"))
}

async fn argon2_verify(hash: String, secret: String) -> bool {
    spawn_blocking_with_tracing(move || {
        PasswordHash::new(&hash)
            .and_then(|parsed| {
                argon2::Argon2::default().verify_password(secret.as_bytes(), &parsed)
            })
            .is_ok()
    })
    .await
    .unwrap_or(false)
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
    fn scheme_is_case_insensitive() {
        let raw = STANDARD.encode("a:b");
        assert!(ClientCredentials::from_parts(Some(&format!("bAsIc {raw}")), None, None).is_ok());
    }
}
