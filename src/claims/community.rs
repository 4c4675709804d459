//! The person as their community knows them (issue 26): the profile claims from a server
//! (`name` and `nickname` from the server nickname, `picture` from the server avatar, each
//! falling back to the account), and role entries of `groups` by their Discord name. Pure.

use crate::config::{GroupFormat, ValidGroup};
use crate::policy::{self, Facts};
use crate::store::UserRecord;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What the person set for themselves in the profile guild (both often absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerProfile<'a> {
    /// The profile guild's id.
    pub guild: &'a str,
    /// Server nickname.
    pub nick: Option<&'a str>,
    /// Server avatar hash.
    pub avatar: Option<&'a str>,
}

/// Replaces the `profile` scope's `name` and `picture` with the server profile and adds
/// `nickname`: the server nickname, else the global display name, else the username; the
/// server avatar, else the account avatar (else Discord's default).
pub fn apply_server_profile(
    claims: &mut Map<String, Value>,
    user: &UserRecord,
    server: ServerProfile<'_>,
) {
    let name = server
        .nick
        .or(user.global_name.as_deref())
        .unwrap_or(&user.username);
    claims.insert("name".into(), json!(name));
    claims.insert("nickname".into(), json!(name));
    let picture = match server.avatar {
        Some(hash) => crate::domain::guild_avatar_url(server.guild, user.id.as_str(), hash),
        None => super::picture_url(user.id.as_str(), user.avatar.as_deref()),
    };
    claims.insert("picture".into(), json!(picture));
}

/// The `groups` claim: the configured groups this client may see (`clients.groups`) whose
/// guild (and role, if set) the person has, in config order. A membership entry is written
/// by its configured name; a role entry as `format` says: its configured name (`id`), the
/// role's name in Discord (`name`; the configured name when no name is known for it), or
/// both. Duplicates are written once.
pub fn groups(
    defs: &[ValidGroup],
    visible: &[String],
    format: GroupFormat,
    facts: &Facts<'_>,
    role_names: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    for g in defs.iter().filter(|g| visible.contains(&g.name)) {
        let Some(role) = &g.role else {
            if policy::is_member(facts, g.guild.as_str()) {
                push(&g.name);
            }
            continue;
        };
        if !policy::has_role(facts, g.guild.as_str(), role.as_str()) {
            continue;
        }
        let discord_name = role_names
            .get(g.guild.as_str())
            .and_then(|names| names.get(role.as_str()));
        match (format, discord_name) {
            (GroupFormat::Id, _) | (GroupFormat::Name, None) => push(&g.name),
            (GroupFormat::Name, Some(name)) => push(name),
            (GroupFormat::Both, name) => {
                push(&g.name);
                if let Some(name) = name {
                    push(name);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DiscordId;
    use time::OffsetDateTime;

    fn user(global_name: Option<&str>, avatar: Option<&str>) -> UserRecord {
        UserRecord {
            id: DiscordId::parse("402931734925557761").unwrap(),
            username: "bob.staff".into(),
            global_name: global_name.map(str::to_owned),
            avatar: avatar.map(str::to_owned),
            email: None,
            email_verified: false,
            locale: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn profile(user: &UserRecord, nick: Option<&str>, avatar: Option<&str>) -> Map<String, Value> {
        let mut claims = Map::new();
        let server = ServerProfile {
            guild: "812345678901234567",
            nick,
            avatar,
        };
        apply_server_profile(&mut claims, user, server);
        claims
    }

    #[test]
    fn the_name_falls_back_from_nickname_to_display_name_to_username() {
        let full = user(
            Some("Bob (staff)"),
            Some("8342729096ea3675442027381ff50dfe"),
        );
        assert_eq!(profile(&full, Some("Bob"), None)["name"], "Bob");
        assert_eq!(profile(&full, Some("Bob"), None)["nickname"], "Bob");
        assert_eq!(profile(&full, None, None)["name"], "Bob (staff)");
        assert_eq!(
            profile(&user(None, None), None, None)["nickname"],
            "bob.staff"
        );
    }

    #[test]
    fn the_picture_falls_back_from_server_avatar_to_account_avatar() {
        let u = user(None, Some("8342729096ea3675442027381ff50dfe"));
        assert_eq!(
            profile(&u, None, Some("a_51e4c9c1d3c26b1f53b2f5e3a1c1d0aa"))["picture"],
            "https://cdn.discordapp.com/guilds/812345678901234567/users/402931734925557761/avatars/a_51e4c9c1d3c26b1f53b2f5e3a1c1d0aa.gif"
        );
        assert_eq!(
            profile(&u, None, None)["picture"],
            "https://cdn.discordapp.com/avatars/402931734925557761/8342729096ea3675442027381ff50dfe.png"
        );
    }

    #[test]
    fn role_entries_follow_the_group_format_and_membership_entries_keep_their_name() {
        let guild = DiscordId::parse("812345678901234567").unwrap();
        let staff = DiscordId::parse("845611301132730378").unwrap();
        let defs = vec![
            ValidGroup {
                name: "community".into(),
                guild: guild.clone(),
                role: None,
            },
            ValidGroup {
                name: "staff".into(),
                guild: guild.clone(),
                role: Some(staff.clone()),
            },
        ];
        let visible = vec!["community".to_owned(), "staff".to_owned()];
        let guilds = vec![guild.as_str().to_owned()];
        let roles = BTreeMap::from([(guild.as_str().to_owned(), vec![staff.as_str().to_owned()])]);
        let facts = Facts {
            user_id: "1",
            email_verified: true,
            guilds: &guilds,
            roles: &roles,
            connections: &[],
        };
        let names = BTreeMap::from([(
            guild.as_str().to_owned(),
            BTreeMap::from([(staff.as_str().to_owned(), "Staff".to_owned())]),
        )]);
        let by = |format| groups(&defs, &visible, format, &facts, &names);
        assert_eq!(by(GroupFormat::Id), vec!["community", "staff"]);
        assert_eq!(by(GroupFormat::Name), vec!["community", "Staff"]);
        assert_eq!(by(GroupFormat::Both), vec!["community", "staff", "Staff"]);
        let unknown = groups(&defs, &visible, GroupFormat::Name, &facts, &BTreeMap::new());
        assert_eq!(
            unknown,
            vec!["community", "staff"],
            "no name known: the configured one"
        );
    }
}
