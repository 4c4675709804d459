//! Serde shapes of Discord's OAuth2 and REST responses (API v10), as Discord documents them.
//!
//! Optional fields (`name?` in the docs) use `#[serde(default)]`; nullable ones (`?type`) are
//! `Option`. Unknown fields are ignored, since Discord adds fields without a version bump.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The user object (docs: resources/user#user-object). `email`/`verified` need the `email` scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Snowflake id, as a string.
    pub id: String,
    /// Username; not unique across the platform.
    pub username: String,
    /// Discord-tag; `"0"` for users migrated to the new username system.
    pub discriminator: String,
    /// Display name, if set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Avatar hash (`a_` prefix = animated), if set.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Whether the user belongs to an OAuth2 application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<bool>,
    /// Whether the user is an official Discord system user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<bool>,
    /// Whether the user has two-factor authentication enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_enabled: Option<bool>,
    /// Banner hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// Banner colour as an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<u32>,
    /// Chosen language option, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Whether the email has been verified (`email` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The email (`email` scope; may be null even then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Account flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<u64>,
    /// Nitro subscription type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_type: Option<u8>,
    /// Public account flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_flags: Option<u64>,
}

/// A partial guild from `GET /users/@me/guilds` (docs: resources/user#get-current-user-guilds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialGuild {
    /// Guild snowflake.
    pub id: String,
    /// Guild name.
    pub name: String,
    /// Icon hash.
    #[serde(default)]
    pub icon: Option<String>,
    /// Banner hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// Whether the user owns the guild.
    #[serde(default)]
    pub owner: bool,
    /// The user's permissions in the guild, a bit set serialized as a string.
    #[serde(default)]
    pub permissions: String,
    /// Enabled guild features.
    #[serde(default)]
    pub features: Vec<String>,
    /// Only with `with_counts=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<u64>,
    /// Only with `with_counts=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<u64>,
}

/// The guild member object (docs: resources/guild#guild-member-object), as returned by
/// `GET /users/@me/guilds/{guild.id}/member` (needs `guilds.members.read`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildMember {
    /// The user this member represents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Guild nickname.
    #[serde(default)]
    pub nick: Option<String>,
    /// Guild avatar hash.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Guild banner hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// Role snowflakes.
    pub roles: Vec<String>,
    /// ISO 8601 join time; documented as nullable (guest members).
    #[serde(default)]
    pub joined_at: Option<String>,
    /// ISO 8601 time the member started boosting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_since: Option<String>,
    /// Deafened in voice channels.
    #[serde(default)]
    pub deaf: bool,
    /// Muted in voice channels.
    #[serde(default)]
    pub mute: bool,
    /// Guild member flags (bit set), defaults to 0.
    #[serde(default)]
    pub flags: u64,
    /// Whether the member has not yet passed Membership Screening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<bool>,
    /// ISO 8601 end of a timeout, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_disabled_until: Option<String>,
}

/// A role object (docs: topics/permissions#role-object), as `GET /guilds/{guild.id}/roles`
/// lists them and the Gateway's `GUILD_ROLE_CREATE` / `GUILD_ROLE_UPDATE` carry them. Only
/// the fields guildgate reads are required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Role snowflake (the @everyone role's is the guild's).
    pub id: String,
    /// Role name, as the server shows it.
    pub name: String,
    /// Position in the server's role list.
    #[serde(default)]
    pub position: i64,
    /// Permission bit set, serialized as a string.
    #[serde(default)]
    pub permissions: String,
    /// Whether the role is managed by an integration (a bot's own role, boosters, …).
    #[serde(default)]
    pub managed: bool,
    /// Whether it is pinned in the member list.
    #[serde(default)]
    pub hoist: bool,
    /// Whether it can be mentioned.
    #[serde(default)]
    pub mentionable: bool,
}

/// A linked account from `GET /users/@me/connections` (docs: resources/user#connection-object;
/// needs the `connections` scope).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The account's id on the other service.
    pub id: String,
    /// The account's name on the other service.
    pub name: String,
    /// The service, e.g. `github`, `steam`, `twitch` (docs: connection-object-services).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the connection has been revoked.
    #[serde(default)]
    pub revoked: bool,
    /// Whether the person proved they own the account.
    #[serde(default)]
    pub verified: bool,
    /// Whether friend sync is on.
    #[serde(default)]
    pub friend_sync: bool,
    /// Whether activities of this connection show in presence updates.
    #[serde(default)]
    pub show_activity: bool,
    /// Whether it supports console voice transfer.
    #[serde(default)]
    pub two_way_link: bool,
    /// 0 = visible only to the person, 1 = visible to everyone (docs: visibility types).
    #[serde(default)]
    pub visibility: u8,
}

impl Connection {
    /// Visibility type 0: only the person sees it.
    pub const HIDDEN: u8 = 0;

    /// Whether guildgate may release it: verified, not revoked, and not hidden by its owner.
    pub fn is_releasable(&self) -> bool {
        self.verified && !self.revoked && self.visibility != Self::HIDDEN
    }
}

/// The access token response (docs: topics/oauth2#authorization-code-grant-access-token-response).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires (604800 in Discord's examples).
    pub expires_in: u64,
    /// Refresh token (absent for client-credentials grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Space-separated granted scopes.
    #[serde(default)]
    pub scope: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// Discord's JSON error body (docs: topics/opcodes-and-status-codes#json), e.g.
/// `{"message": "401: Unauthorized", "code": 0}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// JSON error code (0 = general error, 10004 = Unknown Guild, 10007 = Unknown Member, ...).
    #[serde(default)]
    pub code: i64,
    /// Field errors of form-body errors (code 50035).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<serde_json::Value>,
}

/// JSON error codes used by this crate (docs: topics/opcodes-and-status-codes#json).
pub mod codes {
    /// General error (e.g. `401: Unauthorized`).
    pub const GENERAL: i64 = 0;
    /// Unknown guild.
    pub const UNKNOWN_GUILD: i64 = 10004;
    /// Unknown member.
    pub const UNKNOWN_MEMBER: i64 = 10007;
    /// Unknown user.
    pub const UNKNOWN_USER: i64 = 10013;
    /// Missing access.
    pub const MISSING_ACCESS: i64 = 50001;
}

/// The 429 body (docs: topics/rate-limits#exceeding-a-rate-limit-rate-limit-response-structure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitBody {
    /// "You are being rate limited."
    pub message: String,
    /// Seconds to wait before retrying (float).
    pub retry_after: f64,
    /// Whether this is the global rate limit.
    #[serde(default)]
    pub global: bool,
    /// An error code for some limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// OAuth2 error body from the token endpoints (RFC 6749 §5.2), e.g.
/// `{"error": "invalid_grant", "error_description": "Invalid \"code\" in request."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// RFC 6749 error code.
    pub error: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parses_the_docs_example_and_ignores_unknown_fields() {
        let json = r#"{"id":"80351110224678912","username":"Nelly","discriminator":"1337",
            "avatar":"8342729096ea3675442027381ff50dfe","verified":true,"email":"nelly@discord.com",
            "flags":64,"banner":"06c16474723fe537c283b8efa61a30c8","accent_color":16711680,
            "premium_type":1,"public_flags":64,
            "avatar_decoration_data":{"sku_id":"1144058844004233369","asset":"a_fed4"}}"#;
        let u: User = serde_json::from_str(json).expect("docs example parses");
        assert_eq!(
            u.global_name, None,
            "global_name absent in the old example -> None"
        );
        assert_eq!(u.verified, Some(true));
        assert_eq!(u.email.as_deref(), Some("nelly@discord.com"));
    }

    #[test]
    fn member_and_partial_guild_parse_the_docs_examples() {
        let m: GuildMember = serde_json::from_str(
            r#"{"user":{},"nick":"NOT API SUPPORT","avatar":null,"banner":null,"roles":[],
               "joined_at":"2015-04-26T06:26:56.936000+00:00","deaf":false,"mute":false}"#
                .replace(r#""user":{},"#, "")
                .as_str(),
        )
        .expect("docs example parses");
        assert_eq!(m.nick.as_deref(), Some("NOT API SUPPORT"));
        let g: PartialGuild = serde_json::from_str(
            r#"{"id":"80351110224678912","name":"1337 Krew","icon":"8342729096ea3675442027381ff50dfe",
               "banner":"bb42bdc37653b7cf58c4c8cc622e76cb","owner":true,"permissions":"36953089",
               "features":["COMMUNITY"],"approximate_member_count":3268,"approximate_presence_count":784}"#,
        )
        .expect("docs example parses");
        assert!(g.owner);
    }

    #[test]
    fn role_parses_the_docs_shape() {
        let r: Role = serde_json::from_str(
            r#"{"id":"41771983423143936","name":"WE DEM BOYZZ!!!!!!","color":3447003,
               "colors":{"primary_color":3447003,"secondary_color":null,"tertiary_color":null},
               "hoist":true,"icon":"cf3ced8600b777c9486c6d8d84fb4327","unicode_emoji":null,
               "position":1,"permissions":"66321471","managed":false,"mentionable":false,"flags":0}"#,
        )
        .expect("docs example parses");
        assert_eq!(r.name, "WE DEM BOYZZ!!!!!!");
        assert_eq!(r.position, 1);
    }

    #[test]
    fn connection_parses_the_docs_shape_and_only_verified_visible_ones_are_releasable() {
        let c: Connection = serde_json::from_str(
            r#"{"id":"583491","name":"octocat","type":"github","verified":true,
               "friend_sync":false,"show_activity":true,"two_way_link":false,"visibility":1,
               "integrations":[]}"#,
        )
        .expect("docs shape parses");
        assert_eq!(c.kind, "github");
        assert!(c.is_releasable());
        assert!(
            !Connection {
                visibility: 0,
                ..c.clone()
            }
            .is_releasable()
        );
        assert!(
            !Connection {
                verified: false,
                ..c.clone()
            }
            .is_releasable()
        );
        assert!(!Connection { revoked: true, ..c }.is_releasable());
    }

    #[test]
    fn token_response_debug_redacts_tokens() {
        let t = TokenResponse {
            access_token: "6qrZcUqja7812RVdnEKjpzOL4CvHBFG".into(),
            token_type: "Bearer".into(),
            expires_in: 604800,
            refresh_token: Some("D43f5y0ahjqew82jZ4NViEr2YafMKhue".into()),
            scope: "identify".into(),
        };
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("6qrZ") && !dbg.contains("D43f"), "{dbg}");
    }
}
