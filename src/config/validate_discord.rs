//! Validation of the Discord side of the settings: the OAuth2 application, which sources the
//! rules need (scopes, stored tokens, the bot) and the optional `[discord.bot]`. Part of
//! [`Settings::validate`], split from `validate.rs` so each file holds one concern.

use super::Settings;
use super::types::{AccessRules, ValidBot, ValidClient, ValidGroup};
use super::validate::Checker;
use crate::domain::DiscordId;
use secrecy::ExposeSecret;
use url::Url;

impl Settings {
    pub(super) fn check_discord(&self, c: &mut Checker) -> (Option<Url>, Option<Url>) {
        let d = &self.discord;
        if d.client_id.is_empty() {
            c.warnings.push(
                "discord.client_id is empty: nobody can sign in until a Discord application is configured".into(),
            );
        } else if let Err(m) = DiscordId::parse(&d.client_id) {
            c.problem("discord.client_id", m);
        }
        if !d.client_id.is_empty() && d.client_secret.expose_secret().is_empty() {
            c.problem(
                "discord.client_secret",
                "must be set when discord.client_id is (prefer GUILDGATE__DISCORD__CLIENT_SECRET)",
            );
        }
        if !d.scopes.iter().any(|s| s == "identify") {
            c.problem("discord.scopes", "must include \"identify\"");
        }
        let known = [
            "identify",
            "email",
            "guilds",
            "guilds.members.read",
            "connections",
        ];
        for (i, s) in d.scopes.iter().enumerate() {
            if !known.contains(&s.as_str()) {
                c.problem(
                    format!("discord.scopes[{i}]"),
                    format!("{s:?} is not one of {known:?}"),
                );
            }
        }
        let url = |c: &mut Checker, key: &str, raw: &str| {
            c.check(
                key,
                Url::parse(raw)
                    .map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))
                    .and_then(|u| {
                        if matches!(u.scheme(), "http" | "https") {
                            Ok(u)
                        } else {
                            Err("must be an http(s) URL".into())
                        }
                    }),
            )
        };
        (
            url(c, "discord.authorize_url", &d.authorize_url),
            url(c, "discord.api_base_url", &d.api_base_url),
        )
    }

    /// Works out which Discord calls the rules need, and that the scopes and key allow them.
    pub(super) fn check_membership_sources(
        &self,
        c: &mut Checker,
        access: &AccessRules,
        clients: &[ValidClient],
        groups: &[ValidGroup],
        bot: bool,
    ) -> Sources {
        let has_scope = |s: &str| self.discord.scopes.iter().any(|x| x == s);
        let all_rules: Vec<&AccessRules> = std::iter::once(access)
            .chain(clients.iter().map(|cl| &cl.access))
            .collect();
        let mut role_guilds: Vec<String> = all_rules
            .iter()
            .flat_map(|r| r.required_roles.iter().map(|(g, _)| g.as_str().to_owned()))
            .chain(
                groups
                    .iter()
                    .filter(|g| g.role.is_some())
                    .map(|g| g.guild.as_str().to_owned()),
            )
            .chain(community_guilds(clients, true))
            .collect();
        let plain_guilds: Vec<String> = all_rules
            .iter()
            .flat_map(|r| r.allowed_guilds.iter().map(|g| g.as_str().to_owned()))
            .chain(
                groups
                    .iter()
                    .filter(|g| g.role.is_none())
                    .map(|g| g.guild.as_str().to_owned()),
            )
            .chain(community_guilds(clients, false))
            .collect();
        // The server nickname and avatar are in the member object, like roles.
        let profile_guilds: Vec<String> = clients
            .iter()
            .filter_map(|cl| cl.profile_guild.as_ref())
            .map(|g| g.as_str().to_owned())
            .collect();
        if !bot && !profile_guilds.is_empty() && !has_scope("guilds.members.read") {
            c.problem(
                "discord.scopes",
                "profile_guild needs the \"guilds.members.read\" scope (the server nickname and avatar come from the member object), or the bot",
            );
        }
        role_guilds.extend(profile_guilds);
        let mut rule_guilds: Vec<String> =
            role_guilds.iter().chain(&plain_guilds).cloned().collect();
        rule_guilds.sort();
        rule_guilds.dedup();
        // With a bot, memberships are read with its token: people need grant no guild scope.
        if !bot && !role_guilds.is_empty() && !has_scope("guilds.members.read") {
            c.problem(
                "discord.scopes",
                "role rules and role groups need the \"guilds.members.read\" scope",
            );
        }
        if !bot
            && !plain_guilds.is_empty()
            && !has_scope("guilds")
            && !has_scope("guilds.members.read")
        {
            c.problem(
                "discord.scopes",
                "guild rules and groups need the \"guilds\" scope",
            );
        }
        if !has_scope("guilds") {
            role_guilds.extend(plain_guilds.iter().cloned());
        }
        role_guilds.sort();
        role_guilds.dedup();
        let needs = !role_guilds.is_empty() || !plain_guilds.is_empty();
        Sources {
            member_guilds: role_guilds,
            rule_guilds,
            needs_guilds: needs,
        }
    }

    /// `[discord.bot]`: off without a token; the token's shape, the watched guilds (every rule
    /// guild must be watched: the bot answers membership for them) and the Gateway URL.
    pub(super) fn check_bot(&self, c: &mut Checker, rule_guilds: &[String]) -> Option<ValidBot> {
        let b = &self.discord.bot;
        let token = b.token.expose_secret();
        if token.is_empty() {
            return None;
        }
        // Discord bot tokens are three base64url parts joined by dots; anything else (a client
        // secret, a token with "Bot " in front, a stray space) cannot work.
        let part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == b'-' || ch == b'_')
        };
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 || !parts.iter().all(|p| part(p)) {
            c.problem(
                "discord.bot.token",
                "is not a Discord bot token (three dot-separated parts, without \"Bot \" in front; copy it from the Bot page of the Developer Portal)",
            );
        }
        let guilds = if b.guilds.is_empty() {
            rule_guilds.to_vec()
        } else {
            let ids = c.ids("discord.bot.guilds", &b.guilds);
            for g in rule_guilds {
                if !ids.iter().any(|id| id.as_str() == g) {
                    c.problem(
                        "discord.bot.guilds",
                        format!("guild {g} is named in rules or groups but not watched by the bot"),
                    );
                }
            }
            ids.iter().map(|id| id.as_str().to_owned()).collect()
        };
        if guilds.is_empty() {
            c.problem(
                "discord.bot.guilds",
                "the bot watches no guild: list guilds here or name them in rules or groups",
            );
        }
        let gateway_url = b
            .gateway_url
            .as_ref()
            .filter(|u| !u.is_empty())
            .and_then(|raw| {
                c.check(
                    "discord.bot.gateway_url",
                    Url::parse(raw)
                        .map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))
                        .and_then(|u| match u.scheme() {
                            "ws" | "wss" => Ok(raw.clone()),
                            _ => Err("must be a ws:// or wss:// URL".into()),
                        }),
                )
            });
        Some(ValidBot {
            token: b.token.clone(),
            guilds,
            gateway_url,
        })
    }

    /// Clients that receive or require linked accounts (or map a claim from one) need the
    /// `connections` Discord scope; returns whether any client uses them.
    pub(super) fn check_connections(&self, c: &mut Checker) -> bool {
        let has_scope = self.discord.scopes.iter().any(|s| s == "connections");
        let mut used = false;
        for (i, client) in self.clients.iter().enumerate() {
            let mut uses = vec![
                ("connections".to_owned(), client.connections),
                (
                    "required_connections".to_owned(),
                    !client.required_connections.is_empty(),
                ),
            ];
            for (j, claim) in client.claims.iter().enumerate() {
                for (k, rule) in claim.rules.iter().enumerate() {
                    let field = format!("claims[{j}].rules[{k}].connection");
                    uses.push((field, rule.connection.is_some()));
                }
            }
            for (field, _) in uses.into_iter().filter(|(_, on)| *on) {
                used = true;
                if !has_scope {
                    c.problem(
                        format!("clients[{i}].{field}"),
                        "needs \"connections\" in discord.scopes (Discord lists linked accounts only with that scope)",
                    );
                }
            }
        }
        used
    }
}

/// The guilds a client's mapped claims name: in role rules (`roles`) or membership rules.
fn community_guilds(clients: &[ValidClient], roles: bool) -> impl Iterator<Item = String> + '_ {
    use super::ClaimCondition;
    clients
        .iter()
        .flat_map(|cl| cl.claims.iter())
        .flat_map(|claim| claim.rules.iter())
        .filter_map(move |rule| match (&rule.when, roles) {
            (ClaimCondition::Role(g, _), true) | (ClaimCondition::Guild(g), false) => {
                Some(g.as_str().to_owned())
            }
            _ => None,
        })
}

/// What the rules need to know about memberships.
pub(super) struct Sources {
    /// Guilds whose member object a person's token must fetch (no bot).
    pub(super) member_guilds: Vec<String>,
    /// Every guild a rule or group names.
    pub(super) rule_guilds: Vec<String>,
    /// Whether any rule or group depends on guild membership.
    pub(super) needs_guilds: bool,
}
