//! The fake's data: the registered application, guilds with roles, and users with memberships.

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;

/// Everything the fake Discord knows. Loaded from TOML (see `config/dev-discord.toml`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeData {
    /// The registered application's client id.
    pub client_id: String,
    /// The registered application's client secret.
    pub client_secret: String,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// The application's bot token (`Authorization: Bot …` and Gateway Identify).
    #[serde(default = "default_bot_token")]
    pub bot_token: String,
    /// Guilds.
    #[serde(default)]
    pub guilds: Vec<FakeGuild>,
    /// Users, in the order the picker shows them.
    #[serde(default)]
    pub users: Vec<FakeUser>,
}

impl fmt::Debug for FakeData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeData")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("bot_token", &"[redacted]")
            .field("guilds", &self.guilds)
            .field("users", &self.users)
            .finish()
    }
}

/// A guild.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeGuild {
    /// Snowflake.
    pub id: String,
    /// Name.
    pub name: String,
    /// Icon hash.
    #[serde(default)]
    pub icon: Option<String>,
    /// The owner's user id.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Guild features, e.g. `COMMUNITY`.
    #[serde(default)]
    pub features: Vec<String>,
    /// Roles (besides @everyone).
    #[serde(default)]
    pub roles: Vec<FakeRole>,
}

/// A role in a guild.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeRole {
    /// Snowflake.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A user.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeUser {
    /// Snowflake.
    pub id: String,
    /// Username.
    pub username: String,
    /// `"0"` for migrated users (the default).
    #[serde(default = "default_discriminator")]
    pub discriminator: String,
    /// Display name.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Avatar hash (`a_` = animated).
    #[serde(default)]
    pub avatar: Option<String>,
    /// Email (returned only with the `email` scope).
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the email is verified.
    #[serde(default = "default_true")]
    pub verified: bool,
    /// Locale.
    #[serde(default = "default_locale")]
    pub locale: String,
    /// Two-factor enabled.
    #[serde(default)]
    pub mfa_enabled: bool,
    /// Guild memberships.
    #[serde(default)]
    pub memberships: Vec<FakeMembership>,
    /// Linked accounts (`GET /users/@me/connections`, with the `connections` scope).
    #[serde(default)]
    pub connections: Vec<FakeConnection>,
}

/// A linked account on another service (Discord's connection object).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeConnection {
    /// The service, e.g. `github`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The account's id there.
    pub id: String,
    /// The account's name there.
    pub name: String,
    /// Whether the person proved they own it.
    #[serde(default = "default_true")]
    pub verified: bool,
    /// 1 = visible to everyone, 0 = hidden from everyone but the person.
    #[serde(default = "default_visibility")]
    pub visibility: u8,
    /// Whether it has been revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// A user's membership in a guild.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeMembership {
    /// Guild snowflake.
    pub guild: String,
    /// Role snowflakes.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Guild nickname.
    #[serde(default)]
    pub nick: Option<String>,
    /// Server avatar hash (`a_` = animated).
    #[serde(default)]
    pub avatar: Option<String>,
    /// ISO 8601 join time.
    #[serde(default = "default_joined_at")]
    pub joined_at: String,
}

/// The bot user's id (the application's id, as for real bots).
pub(super) const BOT_USER_ID: &str = "100000000000000001";

/// A made-up token in Discord's shape (base64 user id . timestamp . HMAC).
fn default_bot_token() -> String {
    "MTAwMDAwMDAwMDAwMDAwMDAx.ZmFrZQ.ZGV2LWJvdC10b2tlbi1ub3QtYS1zZWNyZXQ".to_owned()
}

fn default_discriminator() -> String {
    "0".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_locale() -> String {
    "en-US".to_owned()
}
fn default_visibility() -> u8 {
    1
}
fn default_joined_at() -> String {
    "2021-06-01T12:00:00.000000+00:00".to_owned()
}

/// Why fake data was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FakeDataError {
    /// Not valid TOML, or unknown/missing keys.
    #[error("fake Discord data is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// Valid TOML with inconsistent content; every problem is listed.
    #[error("fake Discord data is inconsistent: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The demo data embedded in the binary.
const DEMO: &str = include_str!("../../../config/dev-discord.toml");

impl FakeData {
    /// Parses and checks TOML data.
    pub fn from_toml_str(text: &str) -> Result<Self, FakeDataError> {
        let data: FakeData = toml::from_str(text)?;
        data.validate()?;
        Ok(data)
    }

    /// The demo data of `config/dev-discord.toml` (embedded at build time).
    pub fn demo() -> Result<Self, FakeDataError> {
        Self::from_toml_str(DEMO)
    }

    /// Checks ids are snowflakes and unique, and memberships name known guilds and roles.
    pub fn validate(&self) -> Result<(), FakeDataError> {
        let mut problems = Vec::new();
        let snowflake =
            |id: &str| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
        if !snowflake(&self.client_id) {
            problems.push(format!("client_id {:?} is not a snowflake", self.client_id));
        }
        if self.redirect_uris.is_empty() {
            problems.push("redirect_uris is empty".to_owned());
        }
        for uri in &self.redirect_uris {
            if url::Url::parse(uri).is_err() {
                problems.push(format!("redirect URI {uri:?} is not an absolute URL"));
            }
        }
        let mut seen = HashSet::new();
        for guild in &self.guilds {
            for id in std::iter::once(&guild.id).chain(guild.roles.iter().map(|r| &r.id)) {
                if !snowflake(id) || !seen.insert(id.as_str()) {
                    problems.push(format!("guild/role id {id:?} is not a unique snowflake"));
                }
            }
        }
        for user in &self.users {
            if !snowflake(&user.id) || !seen.insert(user.id.as_str()) {
                problems.push(format!("user id {:?} is not a unique snowflake", user.id));
            }
            for m in &user.memberships {
                let Some(guild) = self.guild(&m.guild) else {
                    problems.push(format!("user {} is in unknown guild {}", user.id, m.guild));
                    continue;
                };
                for role in &m.roles {
                    if !guild.roles.iter().any(|r| &r.id == role) {
                        problems.push(format!(
                            "user {} has unknown role {role} in {}",
                            user.id, m.guild
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FakeDataError::Invalid(problems))
        }
    }

    /// The user with this id.
    pub fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The guild with this id.
    pub fn guild(&self, id: &str) -> Option<&FakeGuild> {
        self.guilds.iter().find(|g| g.id == id)
    }

    pub(super) fn set_member_roles(
        &mut self,
        user_id: &str,
        guild_id: &str,
        roles: Vec<String>,
    ) -> bool {
        if self.guild(guild_id).is_none() {
            return false;
        }
        let Some(user) = self.users.iter_mut().find(|u| u.id == user_id) else {
            return false;
        };
        match user.memberships.iter_mut().find(|m| m.guild == guild_id) {
            Some(m) => m.roles = roles,
            None => user.memberships.push(FakeMembership {
                guild: guild_id.to_owned(),
                roles,
                nick: None,
                avatar: None,
                joined_at: default_joined_at(),
            }),
        }
        true
    }

    /// Changes a member's membership in place; false when they are not a member.
    pub(super) fn edit_member(
        &mut self,
        user_id: &str,
        guild_id: &str,
        edit: impl FnOnce(&mut FakeMembership),
    ) -> bool {
        let member = self
            .users
            .iter_mut()
            .find(|u| u.id == user_id)
            .and_then(|u| u.memberships.iter_mut().find(|m| m.guild == guild_id));
        match member {
            Some(m) => {
                edit(m);
                true
            }
            None => false,
        }
    }

    /// Renames a role; false when the guild or role is unknown.
    pub(super) fn rename_role(&mut self, guild_id: &str, role_id: &str, name: &str) -> bool {
        let role = self
            .guilds
            .iter_mut()
            .find(|g| g.id == guild_id)
            .and_then(|g| g.roles.iter_mut().find(|r| r.id == role_id));
        match role {
            Some(r) => {
                r.name = name.to_owned();
                true
            }
            None => false,
        }
    }

    pub(super) fn set_connections(
        &mut self,
        user_id: &str,
        connections: Vec<FakeConnection>,
    ) -> bool {
        let Some(user) = self.users.iter_mut().find(|u| u.id == user_id) else {
            return false;
        };
        user.connections = connections;
        true
    }

    pub(super) fn remove_from_guild(&mut self, user_id: &str, guild_id: &str) -> bool {
        let Some(user) = self.users.iter_mut().find(|u| u.id == user_id) else {
            return false;
        };
        let before = user.memberships.len();
        user.memberships.retain(|m| m.guild != guild_id);
        user.memberships.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_parses_and_has_the_documented_cast() {
        let data = FakeData::demo().expect("demo data is valid");
        assert_eq!(data.guilds.len(), 2);
        assert_eq!(data.users.len(), 4);
        assert!(
            data.users.iter().any(|u| u.memberships.is_empty()),
            "a user in no guild"
        );
        assert!(
            data.users
                .iter()
                .any(|u| !u.verified && u.avatar.as_deref().is_some_and(|a| a.starts_with("a_"))),
            "a user with an unverified email and an animated avatar"
        );
        let ids = data
            .users
            .iter()
            .map(|u| u.id.len())
            .chain(data.guilds.iter().map(|g| g.id.len()));
        assert!(
            ids.into_iter().all(|n| (17..=19).contains(&n)),
            "realistic snowflakes"
        );
    }

    #[test]
    fn inconsistent_data_lists_every_problem() {
        let text = r#"
            client_id = "abc"
            client_secret = "s"
            redirect_uris = ["not a url"]
            [[users]]
            id = "1"
            username = "a"
            memberships = [{ guild = "2" }]
        "#;
        match FakeData::from_toml_str(text) {
            Err(FakeDataError::Invalid(problems)) => assert_eq!(problems.len(), 3, "{problems:?}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "client_id = \"1\"\nclient_secret = \"s\"\nredirect_uris = []\ntypo = 1\n";
        assert!(matches!(
            FakeData::from_toml_str(text),
            Err(FakeDataError::Toml(_))
        ));
    }
}
