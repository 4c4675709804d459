//! Validation of a client's community settings (issue 26): `profile_guild`, `group_format` and
//! `[[clients.claims]]`, plus the deployment-wide parts (the `[discord] profile_guild` default,
//! and which guilds' role names must be read through the bot). Every problem is reported.

use super::community::{ClaimCondition, ClaimRule, ClaimValue, GroupFormat, MappedClaim};
use super::types::{ValidClient, ValidGroup};
use super::validate::Checker;
use super::{ClaimRuleSettings, ClaimSettings, ClientSettings};
use crate::domain::DiscordId;
use std::collections::HashSet;

/// Claim names a mapped claim may not take: the ones OIDC and OAuth give a meaning (JWT,
/// ID token, logout token, introspection and DPoP members) and the ones guildgate already
/// sends. A flattened duplicate would make the token ambiguous, and an app trusting `sub`
/// or `email` must never read a value an admin rule made up.
pub const RESERVED_CLAIMS: &[&str] = &[
    // RFC 7519 §4.1 and OIDC Core §2, §3.1.3.6, RFC 9068, RFC 7662, RFC 7800, RFC 9449.
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "nonce",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "cnf",
    "scope",
    "client_id",
    "active",
    "token_type",
    "username",
    "typ",
    "events",
    "gid",
    "_claim_names",
    "_claim_sources",
    // OIDC Core §5.1 standard claims.
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    // guildgate's own.
    "groups",
    "connections",
];

/// Scopes a mapped claim may be released with.
const CLAIM_SCOPES: [&str; 4] = ["openid", "profile", "email", "groups"];

/// The typed community settings of one client.
pub(super) struct Community {
    /// The client's own profile guild (`None` also for `""`; the default is filled in later by
    /// [`inherit_profile_guild`] for clients that set none).
    pub(super) profile_guild: Option<DiscordId>,
    /// `group_format`.
    pub(super) group_format: GroupFormat,
    /// `[[clients.claims]]`.
    pub(super) claims: Vec<MappedClaim>,
}

/// Checks client `i`'s `profile_guild`, `group_format` and `claims`.
pub(super) fn check(c: &mut Checker, i: usize, s: &ClientSettings) -> Community {
    let key = |field: &str| format!("clients[{i}].{field}");
    let profile_guild = s
        .profile_guild
        .as_deref()
        .filter(|g| !g.is_empty())
        .and_then(|g| c.check(key("profile_guild"), DiscordId::parse(g)));
    let group_format = match s.group_format.as_str() {
        "id" => GroupFormat::Id,
        "name" => GroupFormat::Name,
        "both" => GroupFormat::Both,
        other => {
            c.problem(
                key("group_format"),
                format!("{other:?} is not \"id\", \"name\" or \"both\""),
            );
            GroupFormat::Id
        }
    };
    let mut names = HashSet::new();
    let claims = s
        .claims
        .iter()
        .enumerate()
        .filter_map(|(j, claim)| {
            let key = key(&format!("claims[{j}]"));
            if !names.insert(claim.name.as_str()) {
                c.problem(
                    format!("{key}.name"),
                    format!("{:?} is declared twice for this client", claim.name),
                );
            }
            check_claim(c, &key, claim)
        })
        .collect();
    Community {
        profile_guild,
        group_format,
        claims,
    }
}

fn check_claim(c: &mut Checker, key: &str, claim: &ClaimSettings) -> Option<MappedClaim> {
    let name = c.check(format!("{key}.name"), claim_name(&claim.name));
    let scope = claim.scope.as_deref().unwrap_or("profile");
    if !CLAIM_SCOPES.contains(&scope) {
        c.problem(
            format!("{key}.scope"),
            format!("{scope:?} is not one of {CLAIM_SCOPES:?}"),
        );
    }
    let rules: Vec<Option<ClaimRule>> = claim
        .rules
        .iter()
        .enumerate()
        .map(|(k, rule)| check_rule(c, &format!("{key}.rules[{k}]"), rule))
        .collect();
    let default = claim
        .default
        .as_ref()
        .map(|v| c.check(format!("{key}.default"), ClaimValue::parse(v)));
    if claim.rules.is_empty() && claim.default.is_none() {
        c.problem(
            format!("{key}.rules"),
            "give the claim at least one rule or a default",
        );
    }
    Some(MappedClaim {
        name: name?,
        scope: scope.to_owned(),
        rules: rules.into_iter().collect::<Option<Vec<_>>>()?,
        default: default.map_or(Some(None), |d| d.map(Some))?,
    })
}

/// A claim name: printable ASCII without spaces (a JSON member name apps can address, URIs
/// included, OIDC Core §5.1.2), at most 100 characters, not reserved.
fn claim_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 100 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{name:?} is not a claim name (1 to 100 printable characters without spaces)"
        ));
    }
    if RESERVED_CLAIMS.contains(&name) {
        return Err(format!(
            "{name:?} is reserved: OpenID Connect or guildgate gives it its own meaning; choose another name"
        ));
    }
    Ok(name.to_owned())
}

fn check_rule(c: &mut Checker, key: &str, rule: &ClaimRuleSettings) -> Option<ClaimRule> {
    let set = [
        rule.role.is_some(),
        rule.guild.is_some(),
        rule.connection.is_some(),
        rule.always,
    ]
    .iter()
    .filter(|on| **on)
    .count();
    if set != 1 {
        c.problem(
            key,
            "set exactly one of role = \"guild_id:role_id\", guild = \"guild_id\", connection = \"type\" or always = true",
        );
    }
    let value = match &rule.value {
        Some(v) => c.check(format!("{key}.value"), ClaimValue::parse(v)),
        None => {
            c.problem(format!("{key}.value"), "every rule needs a value");
            None
        }
    };
    let when = if let Some(pair) = &rule.role {
        c.check(format!("{key}.role"), role_pair(pair))
    } else if let Some(guild) = &rule.guild {
        c.check(format!("{key}.guild"), DiscordId::parse(guild))
            .map(ClaimCondition::Guild)
    } else if let Some(kind) = &rule.connection {
        c.check(format!("{key}.connection"), connection_type(kind))
            .map(ClaimCondition::Connection)
    } else {
        Some(ClaimCondition::Always)
    };
    (set == 1).then_some(())?;
    Some(ClaimRule {
        when: when?,
        value: value?,
    })
}

/// `"guild_id:role_id"`.
fn role_pair(pair: &str) -> Result<ClaimCondition, String> {
    let (guild, role) = pair
        .split_once(':')
        .ok_or_else(|| format!("{pair:?} is not \"guild_id:role_id\""))?;
    Ok(ClaimCondition::Role(
        DiscordId::parse(guild)?,
        DiscordId::parse(role)?,
    ))
}

/// A Discord connection type (`github`, `steam`, `amazon-music`, …), checked for shape only.
fn connection_type(kind: &str) -> Result<String, String> {
    let ok = !kind.is_empty()
        && kind.len() <= 40
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(kind.to_owned())
    } else {
        Err(format!(
            "{kind:?} is not a Discord connection type such as \"github\" or \"steam\""
        ))
    }
}

/// `[discord] profile_guild`: the default for every client that sets no `profile_guild` of its
/// own (a client's `""` keeps it off).
pub(super) fn inherit_profile_guild(
    c: &mut Checker,
    default: &str,
    raw: &[ClientSettings],
    clients: &mut [ValidClient],
) {
    if default.is_empty() {
        return;
    }
    let Some(guild) = c.check("discord.profile_guild", DiscordId::parse(default)) else {
        return;
    };
    for client in clients {
        let inherits = raw
            .iter()
            .find(|r| r.id == client.id.as_str())
            .is_some_and(|r| r.profile_guild.is_none());
        if inherits {
            client.profile_guild = Some(guild.clone());
        }
    }
}

/// The guilds whose role names the snapshot keeps: those of the role groups a client with
/// `group_format = "name"` or `"both"` may see. Role names come from the guild's role list,
/// which only a bot may read: without one, each such client is a problem.
pub(super) fn role_name_guilds(
    c: &mut Checker,
    raw: &[ClientSettings],
    clients: &[ValidClient],
    groups: &[ValidGroup],
    has_bot: bool,
) -> Vec<String> {
    let mut guilds = Vec::new();
    for client in clients
        .iter()
        .filter(|cl| cl.group_format.needs_role_names())
    {
        let i = raw
            .iter()
            .position(|r| r.id == client.id.as_str())
            .unwrap_or_default();
        if !has_bot {
            c.problem(
                format!("clients[{i}].group_format"),
                "role names are read from the server's role list, which needs the bot: set [discord.bot] token (or use group_format = \"id\")",
            );
        }
        let before = guilds.len();
        guilds.extend(
            groups
                .iter()
                .filter(|g| g.role.is_some() && client.groups.contains(&g.name))
                .map(|g| g.guild.as_str().to_owned()),
        );
        if guilds.len() == before {
            c.warnings.push(format!(
                "clients[{i}] ({}) has group_format = {:?} but sees no [[groups]] entry with a role: the setting changes nothing",
                client.id,
                raw.get(i).map_or("", |r| r.group_format.as_str())
            ));
        }
    }
    guilds.sort();
    guilds.dedup();
    guilds
}
