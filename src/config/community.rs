//! A client's community settings (issue 26) as written (`[[clients.claims]]`) and typed: how
//! role entries of `groups` are written, and the claims mapped from roles, memberships and
//! linked accounts.

use crate::domain::DiscordId;
use serde::Deserialize;
use serde_json::{Value, json};

/// One `[[clients.claims]]` entry: a claim whose value comes from the first matching rule.
#[derive(Debug, Clone, Deserialize)]
pub struct ClaimSettings {
    /// The claim's name in the ID token and at `/userinfo`.
    pub name: String,
    /// The scope that releases it (default `profile`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Rules, tried in order; the first that matches gives the value.
    #[serde(default)]
    pub rules: Vec<ClaimRuleSettings>,
    /// The value when no rule matches (a string or a list of strings); absent: no claim.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

/// One rule of a mapped claim: exactly one condition, and the value it gives.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClaimRuleSettings {
    /// `"guild_id:role_id"`: holds this role.
    #[serde(default)]
    pub role: Option<String>,
    /// A guild id: is a member.
    #[serde(default)]
    pub guild: Option<String>,
    /// A connection type (`github`, …): has a verified, visible linked account of it.
    #[serde(default)]
    pub connection: Option<String>,
    /// `true`: always matches.
    #[serde(default)]
    pub always: bool,
    /// The claim's value when this rule matches: a string or a list of strings.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// How a role entry of `groups` (a `[[groups]]` entry with a `role`) is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupFormat {
    /// The entry's configured `name`, which follows the role id (a rename in Discord changes
    /// nothing). The default, and what guildgate always did.
    #[default]
    Id,
    /// The role's name in Discord, read through the bot; a rename shows at the next refresh
    /// after `discord.membership_ttl`, or at once with the bot's Gateway.
    Name,
    /// The configured name, then the role's name in Discord.
    Both,
}

impl GroupFormat {
    /// Whether role names must be read from Discord for this client.
    pub fn needs_role_names(self) -> bool {
        self != Self::Id
    }
}

/// A claim's value: a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimValue {
    /// One string.
    One(String),
    /// A list of strings (may be empty).
    Many(Vec<String>),
}

impl ClaimValue {
    /// Reads a configured value: a string or a list of strings, nothing else.
    pub fn parse(raw: &Value) -> Result<Self, String> {
        match raw {
            Value::String(s) => Ok(Self::One(s.clone())),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Self::Many)
                .ok_or_else(|| "must be a string or a list of strings".to_owned()),
            _ => Err("must be a string or a list of strings".to_owned()),
        }
    }

    /// The JSON form put in the token.
    pub fn to_json(&self) -> Value {
        match self {
            Self::One(s) => json!(s),
            Self::Many(list) => json!(list),
        }
    }
}

/// What a rule of a mapped claim matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCondition {
    /// Holds this role in this guild.
    Role(DiscordId, DiscordId),
    /// Is a member of this guild.
    Guild(DiscordId),
    /// Has a verified, visible linked account of this type (`github`, …).
    Connection(String),
    /// Always.
    Always,
}

/// One rule: a condition and the value it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// When it applies.
    pub when: ClaimCondition,
    /// What the claim is then.
    pub value: ClaimValue,
}

/// A claim mapped from the person's Discord facts, released with `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedClaim {
    /// The claim's name.
    pub name: String,
    /// The scope that releases it (`openid`, `profile`, `email` or `groups`).
    pub scope: String,
    /// Tried in order; the first match wins.
    pub rules: Vec<ClaimRule>,
    /// When no rule matches; `None`: the claim is left out.
    pub default: Option<ClaimValue>,
}

impl MappedClaim {
    /// Whether some rule looks at the membership snapshot (anything but `always`).
    pub fn reads_membership(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !matches!(r.when, ClaimCondition::Always))
    }
}
