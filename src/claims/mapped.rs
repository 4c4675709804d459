//! Claims mapped per app (`[[clients.claims]]`): each takes the value of the first of its rules
//! the person matches (a role in a guild, membership of a guild, a verified linked account of
//! a type, or always), else its default, else it is left out. Pure, like the rest of `claims`.

use crate::config::{ClaimCondition, MappedClaim};
use crate::domain::Scopes;
use crate::policy::{self, Facts};
use serde_json::Value;

/// The mapped claims `scopes` release, in config order: those whose `scope` was granted and
/// that have a value for this person.
pub fn mapped(claims: &[MappedClaim], scopes: &Scopes, facts: &Facts<'_>) -> Vec<(String, Value)> {
    claims
        .iter()
        .filter(|claim| scopes.contains(&claim.scope))
        .filter_map(|claim| {
            let value = claim
                .rules
                .iter()
                .find(|rule| matches(&rule.when, facts))
                .map(|rule| &rule.value)
                .or(claim.default.as_ref())?;
            Some((claim.name.clone(), value.to_json()))
        })
        .collect()
}

/// Whether the person meets one rule's condition.
fn matches(when: &ClaimCondition, facts: &Facts<'_>) -> bool {
    match when {
        ClaimCondition::Role(guild, role) => policy::has_role(facts, guild.as_str(), role.as_str()),
        ClaimCondition::Guild(guild) => policy::is_member(facts, guild.as_str()),
        ClaimCondition::Connection(kind) => facts.connections.iter().any(|c| &c.kind == kind),
        ClaimCondition::Always => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClaimRule, ClaimValue};
    use crate::discord::LinkedAccount;
    use crate::domain::DiscordId;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn id(raw: &str) -> DiscordId {
        DiscordId::parse(raw).unwrap()
    }

    fn grafana_role() -> MappedClaim {
        let guild = id("812345678901234567");
        MappedClaim {
            name: "grafana_role".into(),
            scope: "profile".into(),
            rules: vec![
                ClaimRule {
                    when: ClaimCondition::Role(guild.clone(), id("845611301132730378")),
                    value: ClaimValue::One("Admin".into()),
                },
                ClaimRule {
                    when: ClaimCondition::Connection("github".into()),
                    value: ClaimValue::Many(vec!["Editor".into(), "Coder".into()]),
                },
                ClaimRule {
                    when: ClaimCondition::Guild(guild),
                    value: ClaimValue::One("Viewer".into()),
                },
            ],
            default: None,
        }
    }

    fn facts<'a>(
        guilds: &'a [String],
        roles: &'a BTreeMap<String, Vec<String>>,
        connections: &'a [LinkedAccount],
    ) -> Facts<'a> {
        Facts {
            user_id: "1",
            email_verified: true,
            guilds,
            roles,
            connections,
        }
    }

    #[test]
    fn the_first_matching_rule_wins_then_the_default_then_nothing() {
        let guild = "812345678901234567".to_owned();
        let guilds = vec![guild.clone()];
        let staff = BTreeMap::from([(guild, vec!["845611301132730378".to_owned()])]);
        let none = BTreeMap::new();
        let github = vec![LinkedAccount {
            kind: "github".into(),
            id: "1".into(),
            name: "a".into(),
        }];
        let profile = Scopes::parse_request("openid profile");
        let claim = [grafana_role()];

        let staff_with_github = mapped(&claim, &profile, &facts(&guilds, &staff, &github));
        assert_eq!(
            staff_with_github,
            vec![("grafana_role".into(), json!("Admin"))]
        );
        let member_with_github = mapped(&claim, &profile, &facts(&guilds, &none, &github));
        assert_eq!(member_with_github[0].1, json!(["Editor", "Coder"]));
        let member = mapped(&claim, &profile, &facts(&guilds, &none, &[]));
        assert_eq!(member[0].1, json!("Viewer"));
        let stranger = mapped(&claim, &profile, &facts(&[], &none, &[]));
        assert!(stranger.is_empty(), "no rule, no default: no claim");

        let with_default = [MappedClaim {
            default: Some(ClaimValue::One("Guest".into())),
            ..grafana_role()
        }];
        assert_eq!(
            mapped(&with_default, &profile, &facts(&[], &none, &[]))[0].1,
            json!("Guest")
        );
        let openid_only = Scopes::parse_request("openid");
        assert!(
            mapped(&with_default, &openid_only, &facts(&[], &none, &[])).is_empty(),
            "released only with its scope"
        );
    }
}
