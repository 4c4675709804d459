//! Validation: turns raw [`Settings`] into typed [`ValidConfig`], reporting every problem at once.

use super::Settings;
use super::types::{AccessRules, Lifetimes, ValidClient, ValidConfig, ValidGroup};
use crate::domain::{DiscordId, Issuer, RedirectUri};
use crate::limits::{Limits, Rate};
use secrecy::ExposeSecret;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// One configuration mistake, with the dotted key path that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// e.g. `clients[0].redirect_uris[1]`.
    pub key: String,
    /// What is wrong, in words an admin can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Collects problems while parsing, so one run reports them all.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<String>,
}

impl Checker {
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Runs a parser; on error records it under `key` and yields `None`.
    pub(super) fn check<T>(
        &mut self,
        key: impl Into<String>,
        parsed: Result<T, String>,
    ) -> Option<T> {
        parsed.map_err(|m| self.problem(key, m)).ok()
    }

    fn duration(&mut self, key: &str, raw: &str) -> Duration {
        let parsed = humantime::parse_duration(raw)
            .map_err(|e| format!("{raw:?} is not a duration like \"60s\", \"10m\", \"30d\" ({e})"))
            .and_then(|d| {
                if d.is_zero() {
                    Err("must be longer than zero".to_owned())
                } else {
                    Ok(d)
                }
            });
        self.check(key, parsed).unwrap_or(Duration::from_secs(1))
    }

    pub(super) fn ids(&mut self, key: &str, raw: &[String]) -> Vec<DiscordId> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, id)| self.check(format!("{key}[{i}]"), DiscordId::parse(id)))
            .collect()
    }

    pub(super) fn roles(&mut self, key: &str, raw: &[String]) -> Vec<(DiscordId, DiscordId)> {
        let mut out = Vec::new();
        for (i, pair) in raw.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let Some((guild, role)) = pair.split_once(':') else {
                self.problem(key, format!("{pair:?} is not \"guild_id:role_id\""));
                continue;
            };
            let guild = self.check(key.clone(), DiscordId::parse(guild));
            let role = self.check(key, DiscordId::parse(role));
            if let (Some(g), Some(r)) = (guild, role) {
                out.push((g, r));
            }
        }
        out
    }

    pub(super) fn uris(&mut self, key: &str, raw: &[String]) -> Vec<RedirectUri> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, u)| self.check(format!("{key}[{i}]"), RedirectUri::parse(u)))
            .collect()
    }
}

impl Settings {
    /// Checks everything and returns the typed config, or every problem found.
    pub fn validate(&self) -> Result<ValidConfig, Vec<Problem>> {
        let mut c = Checker::default();
        for key in &self.unknown_keys {
            c.problem(
                key.clone(),
                "unknown key (a typo, or a setting this version does not have)",
            );
        }
        let issuer = c.check("issuer", Issuer::parse(&self.issuer));
        let listen = c.check(
            "server.listen",
            self.server.listen.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "{:?} is not an address:port such as \"127.0.0.1:8080\"",
                    self.server.listen
                )
            }),
        );
        let trusted_proxies = crate::client_ip::TrustedProxies::new(
            self.server
                .trusted_proxies
                .iter()
                .enumerate()
                .filter_map(|(i, raw)| {
                    c.check(
                        format!("server.trusted_proxies[{i}]"),
                        crate::client_ip::Cidr::parse(raw),
                    )
                })
                .collect(),
        );
        let shutdown_timeout = c
            .check(
                "server.shutdown_timeout",
                humantime::parse_duration(&self.server.shutdown_timeout).map_err(|e| {
                    format!(
                        "{:?} is not a duration like \"20s\" ({e})",
                        self.server.shutdown_timeout
                    )
                }),
            )
            .unwrap_or_default();
        let metrics_listen = self.server.metrics_listen.as_deref().and_then(|raw| {
            c.check(
                "server.metrics_listen",
                raw.parse::<SocketAddr>().map_err(|_| {
                    format!("{raw:?} is not an address:port such as \"127.0.0.1:9090\"")
                }),
            )
        });
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            c.problem(
                "log.format",
                format!("{:?} is not \"pretty\" or \"json\"", self.log.format),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            c.problem(
                "log.level",
                format!("{:?} is not a log filter ({e})", self.log.level),
            );
        }
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            c.problem("database.url", "must start with sqlite:// or postgres://");
        }
        if self.database.max_connections == 0 {
            c.problem("database.max_connections", "must be at least 1");
        }
        if let Err(problem) = self.database.connect_timeout() {
            c.problems.push(problem);
        }
        let lifetimes = Lifetimes {
            code: c.duration("tokens.code_ttl", &self.tokens.code_ttl),
            access_token: c.duration("tokens.access_token_ttl", &self.tokens.access_token_ttl),
            id_token: c.duration("tokens.id_token_ttl", &self.tokens.id_token_ttl),
            refresh_token: c.duration("tokens.refresh_token_ttl", &self.tokens.refresh_token_ttl),
            refresh_token_idle: c.duration(
                "tokens.refresh_token_idle_ttl",
                &self.tokens.refresh_token_idle_ttl,
            ),
            session: c.duration("session.ttl", &self.session.ttl),
            session_idle: c.duration("session.idle_timeout", &self.session.idle_timeout),
            membership: c.duration("discord.membership_ttl", &self.discord.membership_ttl),
            discord_timeout: c.duration("discord.timeout", &self.discord.timeout),
            membership_grace: c
                .check(
                    "discord.membership_grace",
                    humantime::parse_duration(&self.discord.membership_grace).map_err(|e| {
                        format!(
                            "{:?} is not a duration like \"0s\", \"1h\" ({e})",
                            self.discord.membership_grace
                        )
                    }),
                )
                .unwrap_or_default(),
            key_rotation: c.duration("keys.rotate_every", &self.keys.rotate_every),
            key_publish_ahead: c.duration("keys.publish_ahead", &self.keys.publish_ahead),
            key_reload: c.duration("keys.reload_every", &self.keys.reload_every),
            logout_lease: c.duration("jobs.logout_lease", &self.jobs.logout_lease),
            gc_every: c.duration("jobs.gc_every", &self.jobs.gc_every),
            device_code: c.duration("tokens.device_code_ttl", &self.tokens.device_code_ttl),
            device_poll: c.duration(
                "tokens.device_poll_interval",
                &self.tokens.device_poll_interval,
            ),
            request_uri: c.duration("tokens.request_uri_ttl", &self.tokens.request_uri_ttl),
            dpop_proof_max_age: c.duration("dpop.proof_max_age", &self.dpop.proof_max_age),
        };
        if lifetimes.request_uri > Duration::from_secs(600) {
            c.problem(
                "tokens.request_uri_ttl",
                "must be at most 10m (a pushed request is meant for the redirect that follows it)",
            );
        }
        if lifetimes.device_code > Duration::from_secs(3600) {
            c.problem(
                "tokens.device_code_ttl",
                "must be at most 1h (a user code is short: a long life makes it guessable)",
            );
        }
        // RP libraries cache the JWKS (we allow 5 minutes); a key must be visible before it signs.
        if lifetimes.key_publish_ahead < Duration::from_secs(300) {
            c.problem(
                "keys.publish_ahead",
                "must be at least 5m (the JWKS cache lifetime)",
            );
        }
        if lifetimes.code > Duration::from_secs(600) {
            c.problem("tokens.code_ttl", "must be at most 10m (RFC 6749 §4.1.2)");
        }
        check_cookie_name(&mut c, &self.session.cookie_name);
        let (discord_authorize_url, discord_api_base_url) = self.check_discord(&mut c);
        let access = AccessRules {
            allowed_guilds: c.ids("access.allowed_guilds", &self.access.allowed_guilds),
            required_roles: c.roles("access.required_roles", &self.access.required_roles),
            require_verified_email: self.access.require_verified_email,
            allow_users: c.ids("access.allow_users", &self.access.allow_users),
            deny_users: c.ids("access.deny_users", &self.access.deny_users),
            required_connections: Vec::new(),
        };
        let groups = self.check_groups(&mut c);
        let group_names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        let mut seen = HashSet::new();
        let mut clients: Vec<ValidClient> = self
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, client)| {
                super::client_rules::check_client(&mut c, i, client, &group_names, &mut seen)
            })
            .collect();
        super::claim_rules::inherit_profile_guild(
            &mut c,
            &self.discord.profile_guild,
            &self.clients,
            &mut clients,
        );
        let limits = self.check_limits(&mut c);
        let ui = super::ui::check(&mut c, &self.ui);
        let access_token_alg = match self.tokens.access_token_alg.as_str() {
            "ES256" => crate::jws::Alg::ES256,
            "RS256" => crate::jws::Alg::RS256,
            other => {
                c.problem(
                    "tokens.access_token_alg",
                    format!("{other:?} is not \"ES256\" or \"RS256\""),
                );
                crate::jws::Alg::ES256
            }
        };
        let secrets = super::secrets::check(&mut c, &self.secrets);
        if clients.iter().any(|cl| cl.pairwise_subject) && secrets.first.is_none() {
            c.problem(
                "secrets.encryption_key",
                "required when a client uses subject_type = \"pairwise\" (pairwise ids are derived from it: keep it when rotating with secrets.encryption_keys)",
            );
        }
        let needs_connections = self.check_connections(&mut c);
        let has_bot = !self.discord.bot.token.expose_secret().is_empty();
        let sources = self.check_membership_sources(&mut c, &access, &clients, &groups, has_bot);
        let role_name_guilds =
            super::claim_rules::role_name_guilds(&mut c, &self.clients, &clients, &groups, has_bot);
        // Re-checks use the person's kept Discord tokens, except guild re-checks by the bot.
        let needs_person_tokens = (sources.needs_guilds && !has_bot) || needs_connections;
        if needs_person_tokens && secrets.keys.is_empty() && !self.discord.client_id.is_empty() {
            c.problem(
                "secrets.encryption_key",
                "required (or secrets.encryption_keys) when access rules, groups, profile_guild or mapped claims use guild membership or linked accounts: the Discord tokens kept to re-check them at refresh are encrypted with it",
            );
        }
        let bot = self.check_bot(&mut c, &sources.rule_guilds);
        let needs_guilds = sources.needs_guilds;

        match (issuer, listen, discord_authorize_url, discord_api_base_url) {
            (Some(issuer), Some(listen), Some(authorize), Some(api)) if c.problems.is_empty() => {
                Ok(ValidConfig {
                    issuer,
                    listen,
                    trusted_proxies,
                    shutdown_timeout,
                    metrics_listen,
                    lifetimes,
                    access_token_alg,
                    discord_authorize_url: authorize,
                    discord_api_base_url: api,
                    access,
                    groups,
                    clients,
                    limits,
                    pairwise_key: secrets.pairwise_key(),
                    member_guilds: sources.member_guilds,
                    rule_guilds: sources.rule_guilds,
                    bot,
                    needs_membership: needs_guilds || needs_connections,
                    needs_guilds,
                    needs_connections,
                    discord_guild_list: self.discord.scopes.iter().any(|s| s == "guilds"),
                    ui,
                    warnings: c.warnings,
                    dpop_require_nonce: self.dpop.require_nonce,
                    dpop_nonce_key: secrets.dpop_nonce_key(),
                    encryption_keys: secrets.keys,
                    role_name_guilds,
                })
            }
            _ => Err(c.problems),
        }
    }

    fn check_limits(&self, c: &mut Checker) -> Limits {
        let l = &self.limits;
        let mut rate = |key: &str, raw: &str| {
            c.check(format!("limits.{key}"), Rate::parse(raw))
                .unwrap_or(Rate::PLACEHOLDER)
        };
        let limits = Limits {
            failed_auth_per_ip: rate("failed_auth_per_ip", &l.failed_auth_per_ip),
            failed_auth_per_client: rate("failed_auth_per_client", &l.failed_auth_per_client),
            pending_logins_per_ip: l.pending_logins_per_ip,
            authorize_per_ip: rate("authorize_per_ip", &l.authorize_per_ip),
            token_per_ip: rate("token_per_ip", &l.token_per_ip),
            token_per_client: rate("token_per_client", &l.token_per_client),
            userinfo_per_ip: rate("userinfo_per_ip", &l.userinfo_per_ip),
            user_code_failures_per_ip: rate(
                "user_code_failures_per_ip",
                &l.user_code_failures_per_ip,
            ),
            user_code_entries: l.user_code_entries,
        };
        if l.user_code_entries == 0 {
            c.problem("limits.user_code_entries", "must be at least 1");
        }
        if l.pending_logins_per_ip == 0 {
            c.problem("limits.pending_logins_per_ip", "must be at least 1");
        }
        limits
    }

    fn check_groups(&self, c: &mut Checker) -> Vec<ValidGroup> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            if g.name.trim().is_empty() {
                c.problem(format!("groups[{i}].name"), "must not be empty");
            } else if !names.insert(g.name.clone()) {
                c.problem(
                    format!("groups[{i}].name"),
                    format!("{:?} is defined twice", g.name),
                );
            }
            let guild = c.check(format!("groups[{i}].guild"), DiscordId::parse(&g.guild));
            let role = match &g.role {
                Some(r) => c
                    .check(format!("groups[{i}].role"), DiscordId::parse(r))
                    .map(Some),
                None => Some(None),
            };
            if let (Some(guild), Some(role)) = (guild, role) {
                out.push(ValidGroup {
                    name: g.name.clone(),
                    guild,
                    role,
                });
            }
        }
        out
    }
}

fn check_cookie_name(c: &mut Checker, name: &str) {
    // RFC 6265 §4.1.1 token characters.
    let ok = |ch: char| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch);
    if name.is_empty() || !name.chars().all(ok) {
        c.problem(
            "session.cookie_name",
            format!("{name:?} is not a valid cookie name"),
        );
    }
}
