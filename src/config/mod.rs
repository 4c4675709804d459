//! Settings: the layered, typed configuration (defaults → file → environment), secrets redacted.

mod claim_rules;
mod client_grants;
mod client_rules;
mod client_settings;
mod community;
mod secrets;
mod types;
mod ui;
mod validate;
mod validate_discord;

pub use claim_rules::RESERVED_CLAIMS;
pub use client_grants::{parse_jwks, private_member, usable_public_key};
pub use client_settings::ClientSettings;
pub use community::{
    ClaimCondition, ClaimRule, ClaimRuleSettings, ClaimSettings, ClaimValue, GroupFormat,
    MappedClaim,
};
pub use types::{
    AccessRules, AuthMethod, ClientKeys, ClientSecret, Consent, Lifetimes, ValidBot, ValidClient,
    ValidConfig, ValidGroup,
};
pub use ui::{UiSettings, ValidUi, is_css_colour};
pub use validate::Problem;

use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded defaults: `config/default.toml`, documented key by key.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Everything configurable, as written by the admin (validated by [`Settings::validate`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Public base URL; `iss` of every token.
    pub issuer: String,
    /// HTTP listener.
    pub server: ServerSettings,
    /// Logging.
    pub log: LogSettings,
    /// Storage backend.
    pub database: DatabaseSettings,
    /// Signing keys.
    pub keys: KeySettings,
    /// The upstream Discord application.
    pub discord: DiscordSettings,
    /// Token lifetimes.
    pub tokens: TokenSettings,
    /// DPoP proofs.
    pub dpop: DpopSettings,
    /// SSO session.
    pub session: SessionSettings,
    /// Global access policy.
    pub access: AccessSettings,
    /// Secrets for data at rest.
    pub secrets: SecretSettings,
    /// Per-source and per-client limits.
    pub limits: LimitSettings,
    /// Branding of the pages.
    pub ui: UiSettings,
    /// Background work shared by the processes of a deployment.
    pub jobs: JobSettings,
    /// Names for guild memberships and roles (`groups` claim).
    #[serde(default)]
    pub groups: Vec<GroupSettings>,
    /// Registered apps.
    #[serde(default)]
    pub clients: Vec<ClientSettings>,
    /// Keys the file or environment set that guildgate does not know (typos, removed
    /// settings): collected while loading and reported by `validate` with every other problem.
    #[serde(skip)]
    pub unknown_keys: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// `host:port` to bind; port 0 picks a free one (tests).
    pub listen: String,
    /// Peers (IPs or CIDR ranges) whose `X-Forwarded-For` / `Forwarded` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How long SIGTERM/SIGINT waits for in-flight requests.
    pub shutdown_timeout: String,
    /// `host:port` serving only `/metrics`; unset: `/metrics` is on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// A tracing filter directive.
    pub level: String,
    /// `pretty` or `json`.
    pub format: String,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; may hold a password, hence secret.
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// How long start-up (`serve`, `migrate`) keeps retrying an unreachable database.
    pub connect_timeout: String,
}

impl DatabaseSettings {
    /// `connect_timeout` parsed; `"0s"` is allowed and means a single attempt.
    pub fn connect_timeout(&self) -> Result<std::time::Duration, Problem> {
        humantime::parse_duration(&self.connect_timeout).map_err(|e| Problem {
            key: "database.connect_timeout".to_owned(),
            message: format!(
                "{:?} is not a duration like \"30s\" or \"2m\" ({e})",
                self.connect_timeout
            ),
        })
    }
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySettings {
    /// Folder of PEM keys.
    pub dir: PathBuf,
    /// Age after which a successor key is added automatically.
    pub rotate_every: String,
    /// How long a new key is published before it signs.
    pub publish_ahead: String,
    /// How often each process re-reads the folder (picks up `keys rotate` and other processes' keys).
    pub reload_every: String,
}

/// `[discord]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordSettings {
    /// OAuth2 application id.
    pub client_id: String,
    /// OAuth2 application secret.
    pub client_secret: SecretString,
    /// Discord's authorization endpoint.
    pub authorize_url: String,
    /// Discord's REST base (token endpoint is `{api_base_url}/oauth2/token`).
    pub api_base_url: String,
    /// Scopes requested upstream.
    pub scopes: Vec<String>,
    /// Maximum age of a membership snapshot before a refresh re-checks it.
    pub membership_ttl: String,
    /// Upper bound for one call to Discord.
    pub timeout: String,
    /// How long past `membership_ttl` the last snapshot may stand in while Discord is down.
    pub membership_grace: String,
    /// `[discord.bot]`: the optional bot (membership by bot token, live deprovisioning).
    #[serde(default)]
    pub bot: BotSettings,
    /// Default guild whose server nickname and avatar become `name`, `nickname` and `picture`
    /// (empty: none); a client's own `profile_guild` overrides it.
    #[serde(default)]
    pub profile_guild: String,
}

/// `[discord.bot]`; off while `token` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotSettings {
    /// The bot token (prefer `GUILDGATE__DISCORD__BOT__TOKEN`).
    #[serde(default = "empty_secret")]
    pub token: SecretString,
    /// Guild ids the bot watches; empty = every guild named in rules and groups.
    #[serde(default)]
    pub guilds: Vec<String>,
    /// Another Gateway than Discord's (tests and `guildgate dev`).
    #[serde(default)]
    pub gateway_url: Option<String>,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            token: empty_secret(),
            guilds: Vec::new(),
            gateway_url: None,
        }
    }
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    /// Authorization code lifetime.
    pub code_ttl: String,
    /// Access token lifetime.
    pub access_token_ttl: String,
    /// ID token lifetime.
    pub id_token_ttl: String,
    /// Refresh-token family absolute lifetime.
    pub refresh_token_ttl: String,
    /// Refresh-token idle timeout.
    pub refresh_token_idle_ttl: String,
    /// How access tokens are signed: "ES256" (default) or "RS256".
    pub access_token_alg: String,
    /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl: String,
    /// The least time between two polls of a device code (RFC 8628 §3.2 `interval`).
    pub device_poll_interval: String,
    /// How long a pushed authorization request's `request_uri` lives (RFC 9126 §2.2).
    pub request_uri_ttl: String,
}

/// `[dpop]`: sender-constrained tokens (RFC 9449).
#[derive(Debug, Clone, Deserialize)]
pub struct DpopSettings {
    /// How far a proof's `iat` may lie from now, either way.
    pub proof_max_age: String,
    /// Ask for a server-provided nonce in every proof (RFC 9449 §8, §9).
    pub require_nonce: bool,
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// SSO session lifetime.
    pub ttl: String,
    /// A session unused this long ends.
    pub idle_timeout: String,
    /// Cookie name.
    pub cookie_name: String,
}

/// `[access]` and the per-client narrowing rules share these fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessSettings {
    /// Guild ids; member of at least one.
    #[serde(default)]
    pub allowed_guilds: Vec<String>,
    /// `guild:role` pairs; at least one held.
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// Refuse unverified emails.
    #[serde(default)]
    pub require_verified_email: bool,
    /// Always allowed user ids.
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// Never allowed user ids.
    #[serde(default)]
    pub deny_users: Vec<String>,
}

/// `[secrets]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretSettings {
    /// 64 hex chars: the deployment's first key. It opens kept Discord tokens, seals them while
    /// `encryption_keys` is empty, and pairwise subjects and DPoP nonces are derived from it.
    pub encryption_key: SecretString,
    /// 64 hex chars each, newest first: the first seals, every one opens (until `guildgate
    /// reencrypt` has re-sealed everything with the first).
    #[serde(default)]
    pub encryption_keys: Vec<SecretString>,
}

/// `[limits]`: rates are strings like `"10/min"` (see [`crate::limits::Rate`]).
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Failed client authentications per source address.
    pub failed_auth_per_ip: String,
    /// Failed client authentications per registered client id.
    pub failed_auth_per_client: String,
    /// Discord logins started and not yet back, per source address.
    pub pending_logins_per_ip: u32,
    /// `/authorize` and `/callback/discord` requests per source address.
    pub authorize_per_ip: String,
    /// `/token`, `/revoke` and `/introspect` requests per source address.
    pub token_per_ip: String,
    /// `/token`, `/revoke` and `/introspect` requests per authenticated client id.
    pub token_per_client: String,
    /// `/userinfo` requests per source address.
    pub userinfo_per_ip: String,
    /// Wrong user codes typed on `/device`, per source address.
    pub user_code_failures_per_ip: String,
    /// How many times one user code may be entered on `/device`.
    pub user_code_entries: u32,
}

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    /// How long a back-channel logout being delivered is reserved for the process delivering it.
    pub logout_lease: String,
    /// How often expired rows are deleted.
    pub gc_every: String,
}

/// One `[[groups]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupSettings {
    /// The name in the `groups` claim.
    pub name: String,
    /// Guild id.
    pub guild: String,
    /// Role id; absent means plain membership.
    pub role: Option<String>,
}

/// A key path as the other problems name theirs: `server.listne`, `clients[0].publik`.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

/// Why settings could not be read at all (syntax, unknown key, wrong type).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

impl Settings {
    /// Loads defaults, then `file` (if any), then `GUILDGATE__*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, LoadError> {
        Self::load_with(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LoadError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(LoadError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("GUILDGATE__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("GUILDGATE")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("discord.scopes")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("discord.bot.guilds")
                .with_list_parse_key("access.allowed_guilds")
                .with_list_parse_key("access.required_roles")
                .with_list_parse_key("access.allow_users")
                .with_list_parse_key("access.deny_users")
                .with_list_parse_key("secrets.encryption_keys")
                .try_parsing(true)
                .source(Some(env)),
        );
        let merged = builder
            .build()
            .map_err(|e| LoadError(format!("cannot read configuration: {e}")))?;
        // Unknown keys are collected rather than refused at the first one, so `check-config`
        // and reload report them together with every other problem (`validate`).
        let mut unknown_keys = Vec::new();
        let mut settings: Self = serde_ignored::deserialize(merged, |path| {
            unknown_keys.push(key_path(&path));
        })
        .map_err(|e| LoadError(format!("invalid configuration: {e}")))?;
        settings.unknown_keys = unknown_keys;
        Ok(settings)
    }
}
