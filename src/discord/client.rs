//! `DiscordClient`: authorize URL and token exchange/refresh/revoke, plus the shared plumbing
//! (endpoints, bearer GETs, error mapping) that the identity reads in `identity.rs` use. Every call
//! goes through `ratelimit::Transport` (timeout, bounded retries, Discord's rate limits).

use super::answers::{oauth_error, parse};
use super::cache::MembershipCache;
use super::credentials::Credentials;
use super::ratelimit::{Answer, Transport};
use super::roles::RoleNameCache;
use super::{DiscordError, DiscordRoute, DiscordStats, api};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;
use url::{Url, form_urlencoded};

/// Discord asks for `User-Agent: DiscordBot ($url, $versionNumber)` (docs: reference#user-agent).
const USER_AGENT: &str = concat!(
    "DiscordBot (",
    env!("CARGO_PKG_NAME"),
    ", ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Settings of the upstream client (from the `[discord]` config section).
#[derive(Clone, Debug)]
pub struct DiscordClientConfig {
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret (redacted in `Debug`).
    pub client_secret: SecretString,
    /// Discord's authorization endpoint, e.g. `https://discord.com/oauth2/authorize`.
    pub authorize_url: Url,
    /// API base with version, e.g. `https://discord.com/api/v10`; token URL is `{this}/oauth2/token`.
    pub api_base_url: Url,
    /// Scopes to request, e.g. `identify email guilds guilds.members.read`.
    pub scopes: Vec<String>,
    /// Our callback, registered with Discord exactly.
    pub redirect_uri: String,
    /// Timeout of each HTTP request (connect + answer + body).
    pub timeout: Duration,
    /// Total time one call may spend waiting on rate limits before giving up.
    pub max_retry_wait: Duration,
    /// How long a guild list or member answer is reused for the same person
    /// (`discord.membership_ttl`); see [`DiscordClient::fetch_membership`].
    pub membership_ttl: Duration,
    /// The bot token (`[discord.bot] token`), when a bot reads memberships.
    pub bot_token: Option<SecretString>,
}

/// Tokens from Discord's token endpoint. `Debug` never shows them.
#[derive(Clone)]
pub struct DiscordTokens {
    /// Bearer token for the REST API.
    pub access_token: SecretString,
    /// Refresh token, when Discord issued one.
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// Scopes Discord actually granted.
    pub scopes: Vec<String>,
}

impl fmt::Debug for DiscordTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The upstream client. Cheap to clone: one `reqwest::Client` and shared state behind an `Arc`.
#[derive(Clone)]
pub struct DiscordClient {
    inner: Arc<Inner>,
}

struct Inner {
    client_id: String,
    /// The client secret and bot token in use (`credentials.rs`: a reload replaces them once
    /// Discord has accepted the new ones).
    credentials: RwLock<Credentials>,
    /// Counts bot token replacements, so the Gateway connection is made again with the new one.
    bot_generation: tokio::sync::watch::Sender<u64>,
    authorize_url: Url,
    api_base_url: Url,
    token_url: Url,
    revoke_url: Url,
    scopes: Vec<String>,
    redirect_uri: String,
    transport: Transport,
    membership: MembershipCache,
    roles: RoleNameCache,
}

impl fmt::Debug for DiscordClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordClient")
            .field("client_id", &self.inner.client_id)
            .field("api_base_url", &self.inner.api_base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl DiscordClient {
    /// Builds the client; fails only on an unusable configuration.
    pub fn new(cfg: DiscordClientConfig) -> Result<Self, DiscordError> {
        let token_url = endpoint(&cfg.api_base_url, &["oauth2", "token"])?;
        let revoke_url = endpoint(&cfg.api_base_url, &["oauth2", "token", "revoke"])?;
        let credentials =
            Credentials::new(&cfg.client_id, &cfg.client_secret, cfg.bot_token.as_ref())?;
        let http = crate::tls::client_builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DiscordError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client_id: cfg.client_id,
                credentials: RwLock::new(credentials),
                bot_generation: tokio::sync::watch::Sender::new(0),
                authorize_url: cfg.authorize_url,
                api_base_url: cfg.api_base_url,
                token_url,
                revoke_url,
                scopes: cfg.scopes,
                redirect_uri: cfg.redirect_uri,
                transport: Transport::new(http, cfg.max_retry_wait),
                membership: MembershipCache::new(cfg.membership_ttl),
                roles: RoleNameCache::new(cfg.membership_ttl),
            }),
        })
    }

    /// Calls, 429s and latencies per route since start.
    pub fn stats(&self) -> &DiscordStats {
        self.inner.transport.stats()
    }

    /// The membership cache behind [`DiscordClient::fetch_membership`].
    pub(super) fn membership_cache(&self) -> &MembershipCache {
        &self.inner.membership
    }

    /// The role names read through the bot (see [`DiscordClient::guild_role_names`]); the
    /// Gateway's role events correct it.
    pub fn role_name_cache(&self) -> &RoleNameCache {
        &self.inner.roles
    }

    /// Discord's authorization URL for one login: code flow with PKCE S256 and our `state`.
    /// Spaces in values are encoded as `%20`, as in the docs' example URL.
    pub fn authorize_url(&self, state: &str, code_challenge: &str, prompt: Option<&str>) -> Url {
        let scope = self.inner.scopes.join(" ");
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.inner.client_id.as_str()),
            ("scope", scope.as_str()),
            ("state", state),
            ("redirect_uri", self.inner.redirect_uri.as_str()),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(prompt) = prompt {
            pairs.push(("prompt", prompt));
        }
        let ours = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut url = self.inner.authorize_url.clone();
        let query = match url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{ours}"),
            _ => ours,
        };
        url.set_query(Some(&query));
        url
    }

    /// Redeems an authorization code (`grant_type=authorization_code`) with our PKCE verifier.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<DiscordTokens, DiscordError> {
        let redirect_uri = self.inner.redirect_uri.clone();
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", code_verifier),
        ])
        .await
    }

    /// Trades a refresh token for new tokens (`grant_type=refresh_token`).
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
    ) -> Result<DiscordTokens, DiscordError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    /// Revokes a token (RFC 7009). Discord revokes every token of that authorization.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), DiscordError> {
        let body = form(&[("token", token.expose_secret())]);
        let url = &self.inner.revoke_url;
        let answer = self
            .inner
            .transport
            .send(DiscordRoute::Revoke, "app", || self.form_post(url, &body))
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(oauth_error(&answer))
        }
    }

    async fn token_call(&self, params: &[(&str, &str)]) -> Result<DiscordTokens, DiscordError> {
        let body = form(params);
        let url = &self.inner.token_url;
        let answer = self
            .inner
            .transport
            .send(DiscordRoute::Token, "app", || self.form_post(url, &body))
            .await?;
        if !answer.status.is_success() {
            return Err(oauth_error(&answer));
        }
        let t: api::TokenResponse = parse(&answer.body)?;
        if !t.token_type.eq_ignore_ascii_case("bearer") {
            return Err(DiscordError::Malformed(format!(
                "token_type {:?}",
                t.token_type
            )));
        }
        Ok(DiscordTokens {
            access_token: SecretString::from(t.access_token),
            refresh_token: t.refresh_token.map(SecretString::from),
            expires_in: Duration::from_secs(t.expires_in),
            scopes: t.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// The token endpoints accept only `application/x-www-form-urlencoded` (docs: topics/oauth2).
    fn form_post(&self, url: &Url, body: &str) -> reqwest::RequestBuilder {
        self.inner
            .transport
            .http()
            .post(url.clone())
            .header(AUTHORIZATION, self.credentials().basic_auth.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body.to_owned())
    }

    /// `GET {api_base}/{segments}` with the bearer token, through the transport.
    pub(super) async fn get(
        &self,
        route: DiscordRoute,
        segments: &[&str],
        token: &SecretString,
    ) -> Result<Answer, DiscordError> {
        let url = endpoint(&self.inner.api_base_url, segments)?;
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| DiscordError::Unauthorized)?;
        bearer.set_sensitive(true);
        // Rate limits are per user (token), so buckets are keyed by a tag of the token.
        let who = token_tag(token);
        self.inner
            .transport
            .send(route, &who, || {
                self.inner
                    .transport
                    .http()
                    .get(url.clone())
                    .header(AUTHORIZATION, bearer.clone())
                    .header(ACCEPT, "application/json")
            })
            .await
    }
}

impl DiscordClient {
    /// Whether a bot token is configured (memberships are then read with it).
    pub fn has_bot(&self) -> bool {
        self.credentials().bot.is_some()
    }

    /// `GET {api_base}/{segments}` with the bot token, through the transport (the bot's own
    /// rate-limit buckets). `Config` when no bot is configured.
    pub(super) async fn bot_get(
        &self,
        route: DiscordRoute,
        segments: &[&str],
    ) -> Result<Answer, DiscordError> {
        let auth = self
            .credentials()
            .bot
            .as_ref()
            .map(|(_, header)| header.clone())
            .ok_or_else(|| DiscordError::Config("no bot token is configured".into()))?;
        let url = endpoint(&self.inner.api_base_url, segments)?;
        self.inner
            .transport
            .send(route, "bot", || {
                self.inner
                    .transport
                    .http()
                    .get(url.clone())
                    .header(AUTHORIZATION, auth.clone())
                    .header(ACCEPT, "application/json")
            })
            .await
    }
}

/// What `credentials.rs` reaches of the client.
impl DiscordClient {
    /// The secrets in use, for one request.
    pub(super) fn credentials(&self) -> RwLockReadGuard<'_, Credentials> {
        // A writer that panicked left a whole value: assignments replace fields at once.
        self.inner
            .credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the secrets in use.
    pub(super) fn replace_credentials(&self, change: impl FnOnce(&mut Credentials)) {
        let mut credentials = self
            .inner
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        change(&mut credentials);
    }

    /// Tells the Gateway connection the bot token changed.
    pub(super) fn bot_token_replaced(&self) {
        self.inner.bot_generation.send_modify(|g| *g += 1);
    }

    /// Changes each time [`DiscordClient::use_bot_token`] replaces the bot token: the Gateway
    /// connection watches it to connect again with the new one.
    pub fn bot_token_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.bot_generation.subscribe()
    }

    pub(super) fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub(super) fn redirect_uri(&self) -> &str {
        &self.inner.redirect_uri
    }

    pub(super) fn token_url(&self) -> &Url {
        &self.inner.token_url
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// `{api_base}/{segments}`.
    pub(super) fn endpoint_url(&self, segments: &[&str]) -> Result<Url, DiscordError> {
        endpoint(&self.inner.api_base_url, segments)
    }
}

/// `base` + path segments; `base` keeps its own path (e.g. `/api/v10`).
fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, DiscordError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| DiscordError::Config(format!("api_base_url {base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

pub(super) fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Form encoding with `%20` for spaces; `+` can only come from a space, since a literal `+` is `%2B`.
fn query_encode(value: &str) -> String {
    form_encode(value).replace('+', "%20")
}

/// A short, non-reversible tag of a token for bucket keys.
fn token_tag(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose_secret().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
