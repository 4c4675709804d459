//! One `[[clients]]` entry as the admin writes it (validated in `validate.rs` into a
//! [`ValidClient`](super::ValidClient)).

use super::ClaimSettings;
use secrecy::SecretString;
use serde::Deserialize;

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientSettings {
    /// `client_id`.
    pub id: String,
    /// Human name shown on pages.
    pub name: Option<String>,
    /// argon2id PHC string from `guildgate hash-secret`.
    pub secret_hash: Option<String>,
    /// Plain secret: development only, warned about loudly.
    pub secret: Option<SecretString>,
    /// Public client (no secret, PKCE required).
    #[serde(default)]
    pub public: bool,
    /// Exact redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout receiver.
    pub backchannel_logout_uri: Option<String>,
    /// Guild ids; member of at least one (narrows `[access]`).
    #[serde(default)]
    pub allowed_guilds: Vec<String>,
    /// `guild:role` pairs; at least one held (narrows `[access]`).
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// Refuse unverified emails for this client.
    #[serde(default)]
    pub require_verified_email: bool,
    /// Always allowed user ids (still subject to the global rules).
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// Never allowed user ids.
    #[serde(default)]
    pub deny_users: Vec<String>,
    /// Groups this client may see.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `never` | `once` | `always`.
    #[serde(default = "default_consent")]
    pub consent: String,
    /// Issue refresh tokens without `offline_access`.
    #[serde(default)]
    pub refresh_tokens: bool,
    /// May receive `offline_access` grants (consent still required, OIDC Core §11).
    #[serde(default)]
    pub offline_access: bool,
    /// `public` | `pairwise`.
    #[serde(default = "default_subject_type")]
    pub subject_type: String,
    /// May receive the `connections` claim (needs `connections` in `discord.scopes`).
    #[serde(default)]
    pub connections: bool,
    /// Connection types of which the person needs one verified linked account, e.g. `github`.
    #[serde(default)]
    pub required_connections: Vec<String>,
    // Issue 25: grants beyond the browser's code flow, and how clients authenticate.
    /// May use the device authorization grant (RFC 8628).
    #[serde(default)]
    pub device_flow: bool,
    /// May take service tokens with the client credentials grant (RFC 6749 §4.4).
    #[serde(default)]
    pub client_credentials: bool,
    /// Scopes a client-credentials token may carry.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// `client_secret_basic` | `client_secret_post` | `private_key_jwt` | `none`; empty: what
    /// the client's credentials allow.
    #[serde(default)]
    pub token_endpoint_auth_method: String,
    /// The client's public keys for `private_key_jwt` (a JWK Set, inline or as JSON text).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set for `private_key_jwt`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Refuse authorization requests that were not pushed first (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Refuse token requests without a DPoP proof (RFC 9449 §5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// `RS256` (default) or `ES256`: how this client's ID tokens are signed.
    #[serde(default)]
    pub id_token_signed_response_alg: String,
    // Issue 26: community profile
    /// This app's guild for `name`, `nickname` and `picture` from the server profile; absent:
    /// `[discord] profile_guild`; `""`: none, whatever the default.
    #[serde(default)]
    pub profile_guild: Option<String>,
    /// How role entries of `groups` are written: `id` (the configured name), `name` (the
    /// role's name in Discord) or `both`.
    #[serde(default = "default_group_format")]
    pub group_format: String,
    /// `[[clients.claims]]`: claims whose value the first matching rule gives.
    #[serde(default)]
    pub claims: Vec<ClaimSettings>,
}

/// A client as a config file with only its `id` would give: every option at its default.
impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: None,
            secret_hash: None,
            secret: None,
            public: false,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            allowed_guilds: Vec::new(),
            required_roles: Vec::new(),
            require_verified_email: false,
            allow_users: Vec::new(),
            deny_users: Vec::new(),
            groups: Vec::new(),
            consent: default_consent(),
            refresh_tokens: false,
            offline_access: false,
            subject_type: default_subject_type(),
            connections: false,
            required_connections: Vec::new(),
            device_flow: false,
            client_credentials: false,
            allowed_scopes: Vec::new(),
            token_endpoint_auth_method: String::new(),
            jwks: None,
            jwks_uri: None,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            id_token_signed_response_alg: String::new(),
            profile_guild: None,
            group_format: default_group_format(),
            claims: Vec::new(),
        }
    }
}

fn default_consent() -> String {
    "never".to_owned()
}

fn default_subject_type() -> String {
    "public".to_owned()
}

fn default_group_format() -> String {
    "id".to_owned()
}
