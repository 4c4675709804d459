//! The validated configuration: the types the rest of the crate reads, built by `validate`.

use crate::domain::{ClientId, DiscordId, Issuer, RedirectUri};
use secrecy::SecretString;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// Lifetimes parsed once from their duration strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// `tokens.code_ttl`.
    pub code: Duration,
    /// `tokens.access_token_ttl`.
    pub access_token: Duration,
    /// `tokens.id_token_ttl`.
    pub id_token: Duration,
    /// `tokens.refresh_token_ttl` (absolute lifetime of a grant).
    pub refresh_token: Duration,
    /// `tokens.refresh_token_idle_ttl` (a refresh token unused this long expires).
    pub refresh_token_idle: Duration,
    /// `session.ttl`.
    pub session: Duration,
    /// `session.idle_timeout`.
    pub session_idle: Duration,
    /// `discord.membership_ttl`.
    pub membership: Duration,
    /// `discord.timeout`.
    pub discord_timeout: Duration,
    /// `discord.membership_grace` (zero: fail closed at once).
    pub membership_grace: Duration,
    /// `keys.rotate_every`.
    pub key_rotation: Duration,
    /// `keys.publish_ahead`.
    pub key_publish_ahead: Duration,
    /// `keys.reload_every`.
    pub key_reload: Duration,
    /// `jobs.logout_lease`.
    pub logout_lease: Duration,
    /// `jobs.gc_every`.
    pub gc_every: Duration,
    /// `tokens.device_code_ttl`.
    pub device_code: Duration,
    /// `tokens.device_poll_interval`.
    pub device_poll: Duration,
    /// `tokens.request_uri_ttl`.
    pub request_uri: Duration,
    /// `dpop.proof_max_age`.
    pub dpop_proof_max_age: Duration,
}

/// Guild/role/user rules, global or per client (evaluated by `policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRules {
    /// Member of at least one, when non-empty.
    pub allowed_guilds: Vec<DiscordId>,
    /// Holds at least one `(guild, role)`, when non-empty.
    pub required_roles: Vec<(DiscordId, DiscordId)>,
    /// Email must be verified.
    pub require_verified_email: bool,
    /// Always allowed.
    pub allow_users: Vec<DiscordId>,
    /// Never allowed (wins over allow).
    pub deny_users: Vec<DiscordId>,
    /// Has a verified linked account of at least one of these types (e.g. `github`), when
    /// non-empty. Only clients set it.
    pub required_connections: Vec<String>,
}

/// How a client proves itself at the token endpoint.
#[derive(Clone)]
pub enum ClientSecret {
    /// Public client: `token_endpoint_auth_method=none`, PKCE required.
    Public,
    /// argon2id PHC string.
    Hash(String),
    /// Plain secret from config (development only).
    Plain(SecretString),
    /// A confidential client without a secret: it signs assertions with its keys
    /// (`private_key_jwt`).
    KeysOnly,
}

/// The client authentication methods of RFC 7591 §2 guildgate implements (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `none`: a public client names itself.
    None,
    /// `client_secret_basic` or `client_secret_post`, whichever the request uses (the default
    /// for a client with a secret).
    ClientSecret,
    /// `client_secret_basic` only.
    ClientSecretBasic,
    /// `client_secret_post` only.
    ClientSecretPost,
    /// `private_key_jwt`: a JWT signed with one of the client's keys (RFC 7523).
    PrivateKeyJwt,
}

/// Where a client's public keys for `private_key_jwt` come from.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// `jwks`, written in the configuration.
    Inline(std::sync::Arc<jsonwebtoken::jwk::JwkSet>),
    /// `jwks_uri`, fetched (and cached) when an assertion needs them.
    Uri(Url),
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "Public",
            Self::Hash(_) => "Hash(<redacted>)",
            Self::Plain(_) => "Plain(<redacted>)",
            Self::KeysOnly => "KeysOnly",
        })
    }
}

/// Consent mode of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// First-party: never ask.
    Never,
    /// Ask once, remember.
    Once,
    /// Ask at every authorization.
    Always,
}

/// A registered client, typed.
#[derive(Debug, Clone)]
pub struct ValidClient {
    /// `client_id`.
    pub id: ClientId,
    /// Display name (defaults to the id).
    pub name: String,
    /// Authentication.
    pub secret: ClientSecret,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Back-channel logout receiver.
    pub backchannel_logout_uri: Option<Url>,
    /// Narrowing rules.
    pub access: AccessRules,
    /// Group names this client may see.
    pub groups: Vec<String>,
    /// Consent mode.
    pub consent: Consent,
    /// Issue refresh tokens without `offline_access`.
    pub refresh_tokens: bool,
    /// May receive `offline_access` grants, with consent (OIDC Core §11).
    pub offline_access: bool,
    /// Pairwise `sub` (OIDC Core §8.1).
    pub pairwise_subject: bool,
    /// May receive the `connections` claim.
    pub connections: bool,
    // Issue 25: grants beyond the browser's code flow, and how clients authenticate.
    /// May use the device authorization grant (RFC 8628).
    pub device_flow: bool,
    /// May take service tokens (client credentials, RFC 6749 §4.4).
    pub client_credentials: bool,
    /// The scopes a service token may carry, in configuration order.
    pub allowed_scopes: Vec<String>,
    /// How it authenticates at `/token`, `/revoke`, `/introspect` and `/par`.
    pub auth_method: AuthMethod,
    /// Its public keys, for `private_key_jwt`.
    pub keys: Option<ClientKeys>,
    /// Only pushed authorization requests are accepted (RFC 9126 §6).
    pub require_par: bool,
    /// Every token request needs a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound: bool,
    /// How its ID tokens are signed.
    pub id_token_alg: crate::jws::Alg,
    // Issue 26: community profile
    /// The guild whose server nickname and avatar become `name`, `nickname` and `picture`
    /// (the client's own, else `[discord] profile_guild`).
    pub profile_guild: Option<DiscordId>,
    /// How role entries of `groups` are written.
    pub group_format: super::GroupFormat,
    /// Claims mapped from roles, memberships and linked accounts, in config order.
    pub claims: Vec<super::MappedClaim>,
}

impl ValidClient {
    /// Whether it is a public client (no credentials: PKCE instead, RFC 7636).
    pub fn is_public(&self) -> bool {
        matches!(self.secret, ClientSecret::Public)
    }
}

/// A `[[groups]]` entry, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidGroup {
    /// Claim value.
    pub name: String,
    /// Guild id.
    pub guild: DiscordId,
    /// Role id, or plain membership.
    pub role: Option<DiscordId>,
}

/// Settings that passed validation, in the types the rest of the crate uses.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Issuer.
    pub issuer: Issuer,
    /// Listen address.
    pub listen: SocketAddr,
    /// Peers whose forwarding headers name the client (`server.trusted_proxies`).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// How long a stop waits for in-flight requests (`server.shutdown_timeout`).
    pub shutdown_timeout: Duration,
    /// The metrics-only listener, when `/metrics` is kept off `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
    /// How access tokens are signed.
    pub access_token_alg: crate::jws::Alg,
    /// Discord authorize endpoint.
    pub discord_authorize_url: Url,
    /// Discord REST base.
    pub discord_api_base_url: Url,
    /// Global access rules.
    pub access: AccessRules,
    /// Group mappings.
    pub groups: Vec<ValidGroup>,
    /// Clients, in config order.
    pub clients: Vec<ValidClient>,
    /// `[limits]`.
    pub limits: crate::limits::Limits,
    /// The 32-byte keys for data at rest, the one that seals first (`secrets.encryption_keys`
    /// in order, then `secrets.encryption_key`); each one opens. Empty: nothing is kept.
    pub encryption_keys: Vec<[u8; 32]>,
    /// Key for pairwise subjects, derived from `secrets.encryption_key` only (never used for
    /// both jobs): rotating the keys that seal leaves every pairwise subject as it was.
    pub pairwise_key: Option<[u8; 32]>,
    /// Guilds whose member object (roles) must be fetched at login: those a role rule or a
    /// role group names, plus, without the `guilds` scope, every guild a rule or group names.
    pub member_guilds: Vec<String>,
    /// Whether any rule or group depends on guild membership or linked accounts (then the
    /// snapshot is taken at sign-in and re-checked).
    pub needs_membership: bool,
    /// Whether any rule or group depends on guild membership.
    pub needs_guilds: bool,
    /// Whether linked accounts are read (`GET /users/@me/connections`): some client may receive
    /// the `connections` claim or requires a connection.
    pub needs_connections: bool,
    /// Whether the person's guild list is read (`guilds` is among `discord.scopes`).
    pub discord_guild_list: bool,
    /// `[ui]`: branding and template overrides.
    pub ui: super::ValidUi,
    /// The optional bot, when `[discord.bot] token` is set.
    pub bot: Option<ValidBot>,
    /// Every guild a rule or group names (what the bot reads memberships of).
    pub rule_guilds: Vec<String>,
    /// Things that work but deserve a loud line at start-up.
    pub warnings: Vec<String>,
    /// `dpop.require_nonce`.
    pub dpop_require_nonce: bool,
    /// Key for DPoP nonces, derived from the encryption key when there is one (else random per
    /// process).
    pub dpop_nonce_key: [u8; 32],
    // Issue 26: community profile
    /// Guilds whose role names the snapshot keeps (read with the bot): those of the role groups
    /// a client with `group_format = "name"` or `"both"` sees.
    pub role_name_guilds: Vec<String>,
}

/// `[discord.bot]`, typed.
#[derive(Clone)]
pub struct ValidBot {
    /// The bot token.
    pub token: SecretString,
    /// Watched guilds (explicit, or every guild named in rules and groups).
    pub guilds: Vec<String>,
    /// Another Gateway URL than Discord's (`ws://` or `wss://`).
    pub gateway_url: Option<String>,
}

impl fmt::Debug for ValidBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidBot")
            .field("token", &"[redacted]")
            .field("guilds", &self.guilds)
            .field("gateway_url", &self.gateway_url)
            .finish()
    }
}
