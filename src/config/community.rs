//! The typed form of a client's community settings (issue 26): how role entries of `groups` are
//! written, and the claims mapped from roles, memberships and linked accounts.

use crate::domain::DiscordId;
use serde_json::{Value, json};

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
