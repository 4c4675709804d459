//! The keys of clients that publish them at a `jwks_uri` (for `private_key_jwt`): fetched when
//! an assertion needs them, with a time and size limit, kept for five minutes, and fetched
//! again early when an assertion names a key the set lacks, at most once a minute per URL.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// How long fetched keys are used before they are fetched again.
const FRESH_FOR: time::Duration = time::Duration::minutes(5);
/// The least time between two fetches of one URL (an unknown `kid` asks early).
const MIN_REFETCH: time::Duration = time::Duration::minutes(1);
/// Largest key set read: a set of a few RSA-4096 keys is a few KiB.
const MAX_BYTES: usize = 64 * 1024;
/// The whole fetch, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Fetched key sets by URL, shared across reloads.
pub struct KeyCache {
    http: Option<reqwest::Client>,
    by_url: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Fetched>>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

/// One URL's keys and when they were (last tried to be) fetched.
#[derive(Default)]
struct Fetched {
    keys: Option<(Arc<Vec<Jwk>>, OffsetDateTime)>,
    last_attempt: Option<OffsetDateTime>,
}

/// Why no keys could be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The fetch failed and nothing was fetched before.
    #[error("cannot fetch the client's jwks_uri: {0}")]
    Fetch(String),
    /// Fetched too recently to try again.
    #[error("the client's jwks_uri was fetched less than a minute ago")]
    TooSoon,
}

/// When keys are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Any keys fresh enough.
    Current,
    /// An assertion named a key the cached set lacks: fetch again unless that was just done.
    Newer,
}

impl Default for KeyCache {
    fn default() -> Self {
        let http = crate::tls::client_builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the jwks_uri HTTP client"))
            .ok();
        Self {
            http,
            by_url: Mutex::new(HashMap::new()),
        }
    }
}

impl KeyCache {
    /// The keys published at `url`, fetched if needed (see the module docs).
    pub async fn keys(
        &self,
        url: &Url,
        want: Want,
        now: OffsetDateTime,
    ) -> Result<Arc<Vec<Jwk>>, JwksError> {
        let slot = match self.by_url.lock() {
            Ok(mut map) => map.entry(url.as_str().to_owned()).or_default().clone(),
            Err(_) => return Err(JwksError::Fetch("key cache unavailable".into())),
        };
        // One fetch per URL at a time; other URLs are not held up by a slow one.
        let mut fetched = slot.lock().await;
        let fresh = fetched
            .keys
            .as_ref()
            .filter(|(_, at)| now - *at < FRESH_FOR && want == Want::Current)
            .map(|(keys, _)| keys.clone());
        if let Some(keys) = fresh {
            return Ok(keys);
        }
        let may_fetch = fetched
            .last_attempt
            .is_none_or(|at| now - at >= MIN_REFETCH);
        if !may_fetch {
            return match (&fetched.keys, want) {
                (Some((keys, _)), Want::Current) => Ok(keys.clone()),
                _ => Err(JwksError::TooSoon),
            };
        }
        fetched.last_attempt = Some(now);
        match self.fetch(url).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                fetched.keys = Some((keys.clone(), now));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "cannot fetch a client's jwks_uri");
                // Keys fetched before still serve while the URL is failing.
                match &fetched.keys {
                    Some((keys, _)) if want == Want::Current => Ok(keys.clone()),
                    _ => Err(e),
                }
            }
        }
    }

    async fn fetch(&self, url: &Url) -> Result<Vec<Jwk>, JwksError> {
        let fail = |why: String| JwksError::Fetch(why);
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| fail("no HTTP client".into()))?;
        let fetch = async {
            let mut response = http
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "application/jwk-set+json, application/json",
                )
                .send()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(fail(format!("answered {}", response.status())));
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_BYTES as u64)
            {
                return Err(fail(format!("answered more than {MAX_BYTES} bytes")));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?
            {
                if body.len() + chunk.len() > MAX_BYTES {
                    return Err(fail(format!("answered more than {MAX_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // The client's own timeout covers each read; this bounds the whole of a slow trickle.
        let body = tokio::time::timeout(TIMEOUT, fetch)
            .await
            .map_err(|_| fail(format!("no complete answer within {} s", TIMEOUT.as_secs())))??;
        let raw: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| fail(format!("not a JWK Set ({e})")))?;
        // A parsed `Jwk` drops private members, so they are looked for in the raw keys: a
        // private key published for anyone to read is not trusted to prove anything.
        let published = raw["keys"].as_array().map_or(0, Vec::len);
        let public: Vec<serde_json::Value> = raw["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|key| crate::config::private_member(key).is_none())
            .cloned()
            .collect();
        if public.len() < published {
            tracing::warn!(
                url = %url,
                "a client's jwks_uri publishes private keys; they are not used"
            );
        }
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": public }))
            .map_err(|e| fail(format!("not a JWK Set ({e})")))?;
        let usable: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter(|k| crate::config::usable_public_key(k).is_ok())
            .collect();
        if usable.is_empty() {
            return Err(fail("holds no usable public key".into()));
        }
        Ok(usable)
    }
}
