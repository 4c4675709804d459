//! Access rules: who may enter, from Discord facts. Pure: no I/O, no clock.
//!
//! The global `[access]` rules apply to every app; a client's own rules narrow them. Deny lists
//! always win. An allow list entry skips the guild, role and email rules of its own level only.

use crate::config::AccessRules;
use crate::discord::LinkedAccount;
use std::collections::BTreeMap;

/// What Discord told us about a person, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Discord user id.
    pub user_id: &'a str,
    /// Discord's `verified` for the email.
    pub email_verified: bool,
    /// Guild ids the person is in (empty when the `guilds` scope is not configured).
    pub guilds: &'a [String],
    /// Role ids per guild, for the guilds whose member object was fetched.
    pub roles: &'a BTreeMap<String, Vec<String>>,
    /// Verified, visible linked accounts (empty unless the `connections` scope is configured).
    pub connections: &'a [LinkedAccount],
}

/// Why a person was refused; the message names the requirement, never the guilds involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// On a deny list.
    Blocked,
    /// In none of the allowed guilds.
    NotInGuild,
    /// Holds none of the required roles.
    MissingRole,
    /// The Discord email is not verified.
    EmailNotVerified,
    /// Has no verified linked account of a required type.
    MissingConnection,
}

impl Denial {
    /// A sentence for the person, safe to show.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Blocked => "Your Discord account is not allowed to use this app.",
            Self::NotInGuild => {
                "This app is only open to members of certain Discord servers, and your account is not in any of them."
            }
            Self::MissingRole => {
                "This app needs a Discord role that your account does not have. Ask the server's moderators if you think you should have it."
            }
            Self::EmailNotVerified => {
                "This app needs a verified email address on your Discord account. Verify it in Discord's settings, then sign in again."
            }
            Self::MissingConnection => {
                "This app needs a verified account of a certain kind (such as GitHub) linked to your Discord account and visible on your profile. Link it under Connections in Discord's settings, then sign in again."
            }
        }
    }

    /// A short code for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::NotInGuild => "not_in_guild",
            Self::MissingRole => "missing_role",
            Self::EmailNotVerified => "email_not_verified",
            Self::MissingConnection => "missing_connection",
        }
    }
}

/// The global rules, then the client's; the first refusal wins.
pub fn evaluate(
    global: &AccessRules,
    client: &AccessRules,
    facts: &Facts<'_>,
) -> Result<(), Denial> {
    let blocked =
        |rules: &AccessRules| rules.deny_users.iter().any(|u| u.as_str() == facts.user_id);
    if blocked(global) || blocked(client) {
        return Err(Denial::Blocked);
    }
    check_level(global, facts)?;
    check_level(client, facts)
}

fn check_level(rules: &AccessRules, facts: &Facts<'_>) -> Result<(), Denial> {
    if rules
        .allow_users
        .iter()
        .any(|u| u.as_str() == facts.user_id)
    {
        return Ok(());
    }
    if !rules.allowed_guilds.is_empty()
        && !rules.allowed_guilds.iter().any(|g| {
            facts.guilds.iter().any(|m| m == g.as_str()) || facts.roles.contains_key(g.as_str())
        })
    {
        return Err(Denial::NotInGuild);
    }
    if !rules.required_roles.is_empty()
        && !rules
            .required_roles
            .iter()
            .any(|(guild, role)| has_role(facts, guild.as_str(), role.as_str()))
    {
        return Err(Denial::MissingRole);
    }
    if rules.require_verified_email && !facts.email_verified {
        return Err(Denial::EmailNotVerified);
    }
    if !rules.required_connections.is_empty()
        && !facts
            .connections
            .iter()
            .any(|c| rules.required_connections.contains(&c.kind))
    {
        return Err(Denial::MissingConnection);
    }
    Ok(())
}

/// Whether the person holds `role` in `guild` according to the fetched member objects.
pub fn has_role(facts: &Facts<'_>, guild: &str, role: &str) -> bool {
    facts
        .roles
        .get(guild)
        .is_some_and(|roles| roles.iter().any(|r| r == role))
}

/// Whether the person is in `guild` (from the guild list or a fetched member object).
pub fn is_member(facts: &Facts<'_>, guild: &str) -> bool {
    facts.guilds.iter().any(|g| g == guild) || facts.roles.contains_key(guild)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DiscordId;

    const GUILD: &str = "812345678901234567";
    const ROLE: &str = "845611301132730378";
    const USER: &str = "318172463195504640";

    fn id(s: &str) -> DiscordId {
        DiscordId::parse(s).unwrap()
    }

    fn facts<'a>(
        guilds: &'a [String],
        roles: &'a BTreeMap<String, Vec<String>>,
        verified: bool,
    ) -> Facts<'a> {
        Facts {
            user_id: USER,
            email_verified: verified,
            guilds,
            roles,
            connections: &[],
        }
    }

    #[test]
    fn empty_rules_let_anyone_in() {
        let roles = BTreeMap::new();
        assert_eq!(
            evaluate(
                &AccessRules::default(),
                &AccessRules::default(),
                &facts(&[], &roles, false)
            ),
            Ok(())
        );
    }

    #[test]
    fn guild_rule_needs_membership_in_one_allowed_guild() {
        let rules = AccessRules {
            allowed_guilds: vec![id(GUILD)],
            ..Default::default()
        };
        let roles = BTreeMap::new();
        let member = [GUILD.to_owned()];
        assert_eq!(
            evaluate(
                &rules,
                &AccessRules::default(),
                &facts(&member, &roles, true)
            ),
            Ok(())
        );
        assert_eq!(
            evaluate(&rules, &AccessRules::default(), &facts(&[], &roles, true)),
            Err(Denial::NotInGuild)
        );
    }

    #[test]
    fn role_rule_needs_the_role_in_that_guild() {
        let rules = AccessRules {
            required_roles: vec![(id(GUILD), id(ROLE))],
            ..Default::default()
        };
        let mut roles = BTreeMap::new();
        roles.insert(GUILD.to_owned(), vec!["845611212939132928".to_owned()]);
        assert_eq!(
            evaluate(&AccessRules::default(), &rules, &facts(&[], &roles, true)),
            Err(Denial::MissingRole)
        );
        roles.insert(GUILD.to_owned(), vec![ROLE.to_owned()]);
        assert_eq!(
            evaluate(&AccessRules::default(), &rules, &facts(&[], &roles, true)),
            Ok(())
        );
    }

    #[test]
    fn verified_email_rule() {
        let rules = AccessRules {
            require_verified_email: true,
            ..Default::default()
        };
        let roles = BTreeMap::new();
        assert_eq!(
            evaluate(&rules, &AccessRules::default(), &facts(&[], &roles, false)),
            Err(Denial::EmailNotVerified)
        );
    }

    #[test]
    fn connection_rule_needs_a_verified_account_of_a_listed_type() {
        let rules = AccessRules {
            required_connections: vec!["github".into(), "gitlab".into()],
            ..Default::default()
        };
        let roles = BTreeMap::new();
        let steam = [LinkedAccount {
            kind: "steam".into(),
            id: "1".into(),
            name: "s".into(),
        }];
        let github = [LinkedAccount {
            kind: "github".into(),
            id: "2".into(),
            name: "g".into(),
        }];
        let with = |connections| Facts {
            connections,
            ..facts(&[], &roles, true)
        };
        let none = AccessRules::default();
        assert_eq!(
            evaluate(&none, &rules, &with(&[])),
            Err(Denial::MissingConnection)
        );
        assert_eq!(
            evaluate(&none, &rules, &with(&steam)),
            Err(Denial::MissingConnection),
            "another service does not count"
        );
        assert_eq!(evaluate(&none, &rules, &with(&github)), Ok(()));
    }

    #[test]
    fn deny_beats_allow_at_any_level() {
        let global = AccessRules {
            allow_users: vec![id(USER)],
            ..Default::default()
        };
        let client = AccessRules {
            deny_users: vec![id(USER)],
            ..Default::default()
        };
        let roles = BTreeMap::new();
        assert_eq!(
            evaluate(&global, &client, &facts(&[], &roles, true)),
            Err(Denial::Blocked)
        );
    }

    #[test]
    fn an_allow_listed_user_skips_that_levels_rules_only() {
        let global = AccessRules {
            allowed_guilds: vec![id(GUILD)],
            allow_users: vec![id(USER)],
            ..Default::default()
        };
        let client = AccessRules {
            require_verified_email: true,
            ..Default::default()
        };
        let roles = BTreeMap::new();
        assert_eq!(
            evaluate(&global, &AccessRules::default(), &facts(&[], &roles, false)),
            Ok(())
        );
        assert_eq!(
            evaluate(&global, &client, &facts(&[], &roles, false)),
            Err(Denial::EmailNotVerified)
        );
    }

    #[test]
    fn explanations_never_name_guilds() {
        for d in [
            Denial::Blocked,
            Denial::NotInGuild,
            Denial::MissingRole,
            Denial::EmailNotVerified,
            Denial::MissingConnection,
        ] {
            assert!(!d.explanation().contains(GUILD));
        }
    }
}
