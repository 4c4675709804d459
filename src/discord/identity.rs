//! What a sign-in learns about a person from Discord: the user object (`/users/@me`) and the
//! guild membership (`/users/@me/guilds`, `/users/@me/guilds/{id}/member`) that rules and group
//! mappings need, the latter read through a short-lived cache so a burst of sign-ins
//! and refreshes stays under Discord's tight limit on the member endpoint.

use super::answers::{is_snowflake, member_answer, parse, rest_error};
use super::cache::CachedMember;
use super::{DiscordClient, DiscordError, DiscordRoute, api};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What Discord said about a person's guilds and roles; stored as the JSON membership snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Guild ids the person is in: the guild list (with the `guilds` scope) plus guilds whose
    /// member object was found.
    pub guilds: Vec<String>,
    /// Role ids per guild, only for the guilds asked for whose member object was found.
    pub roles: BTreeMap<String, Vec<String>>,
    /// The person's verified, visible linked accounts (with the `connections` scope and a
    /// client that uses them); unverified, revoked and hidden ones are never kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<LinkedAccount>,
    /// The person's server profile (nickname, server avatar) in each guild whose member object
    /// was read and where they set one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, MemberProfile>,
    /// Discord's names of the person's roles (role id → name), for the guilds whose role
    /// names a client shows (`group_format`); read through the bot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_names: BTreeMap<String, BTreeMap<String, String>>,
    /// When the oldest role list behind `role_names` was read. Not stored: a snapshot is saved
    /// as taken at this time when it is earlier, so it is never younger than its oldest part.
    #[serde(skip)]
    pub names_read_at: Option<OffsetDateTime>,
}

/// What a member set for themselves in one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProfile {
    /// Server nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Server avatar hash (`a_` = animated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

impl MemberProfile {
    /// The profile of a member object, or `None` when it sets neither.
    pub fn of(nick: Option<String>, avatar: Option<String>) -> Option<Self> {
        let nick = nick.filter(|n| !n.is_empty());
        let avatar = avatar.filter(|a| !a.is_empty());
        (nick.is_some() || avatar.is_some()).then_some(Self { nick, avatar })
    }
}

impl Membership {
    /// Records one guild's member object: a member (roles and server profile), or not.
    pub fn record_member(&mut self, guild: &str, member: Option<CachedMember>) {
        self.profiles.remove(guild);
        match member {
            Some(m) => {
                if !self.guilds.iter().any(|g| g == guild) {
                    self.guilds.push(guild.to_owned());
                }
                if let Some(profile) = MemberProfile::of(m.nick, m.avatar) {
                    self.profiles.insert(guild.to_owned(), profile);
                }
                self.roles.insert(guild.to_owned(), m.roles);
            }
            None => {
                self.guilds.retain(|g| g != guild);
                self.roles.remove(guild);
                self.role_names.remove(guild);
            }
        }
    }
}

/// A verified linked account, as released in the `connections` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAccount {
    /// The service, e.g. `github`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The account's id on that service.
    pub id: String,
    /// The account's name on that service.
    pub name: String,
}

impl DiscordClient {
    /// `GET /users/@me` (needs `identify`; `email` adds `email` and `verified`).
    pub async fn fetch_user(&self, access_token: &SecretString) -> Result<api::User, DiscordError> {
        let answer = self
            .get(DiscordRoute::Me, &["users", "@me"], access_token)
            .await?;
        if answer.status.is_success() {
            parse(&answer.body)
        } else {
            Err(rest_error(&answer))
        }
    }

    /// `GET /users/@me/guilds` (needs `guilds`). Returns up to 200 guilds, the most a user can join,
    /// so no pagination is needed (docs: resources/user#get-current-user-guilds).
    pub async fn fetch_guilds(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<api::PartialGuild>, DiscordError> {
        let answer = self
            .get(
                DiscordRoute::Guilds,
                &["users", "@me", "guilds"],
                access_token,
            )
            .await?;
        if answer.status.is_success() {
            parse(&answer.body)
        } else {
            Err(rest_error(&answer))
        }
    }

    /// `GET /users/@me/guilds/{guild_id}/member` (needs `guilds.members.read`).
    /// `Ok(None)` when the user is not a member (404 with code 10004 Unknown Guild or 10007
    /// Unknown Member); any other 404 is an error, so a wrong base URL never reads as "not a member".
    pub async fn fetch_member(
        &self,
        access_token: &SecretString,
        guild_id: &str,
    ) -> Result<Option<api::GuildMember>, DiscordError> {
        if !is_snowflake(guild_id) {
            return Err(DiscordError::Config(format!(
                "guild id {guild_id:?} is not a snowflake"
            )));
        }
        let path = ["users", "@me", "guilds", guild_id, "member"];
        let answer = self.get(DiscordRoute::Member, &path, access_token).await?;
        member_answer(
            &answer,
            &[api::codes::UNKNOWN_GUILD, api::codes::UNKNOWN_MEMBER],
        )
    }

    /// `GET /users/@me/connections` (needs `connections`): only the verified, visible, unrevoked
    /// accounts, since nothing else may be released or trusted by a rule.
    pub async fn fetch_connections(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<LinkedAccount>, DiscordError> {
        let path = ["users", "@me", "connections"];
        let answer = self
            .get(DiscordRoute::Connections, &path, access_token)
            .await?;
        if !answer.status.is_success() {
            return Err(rest_error(&answer));
        }
        let all: Vec<api::Connection> = parse(&answer.body)?;
        Ok(all
            .into_iter()
            .filter(api::Connection::is_releasable)
            .map(|c| LinkedAccount {
                kind: c.kind,
                id: c.id,
                name: c.name,
            })
            .collect())
    }

    /// Reads a person's membership with as few Discord calls as the configuration allows.
    ///
    /// - `want_guilds` (the `guilds` scope is configured): `GET /users/@me/guilds` once per
    ///   person per `membership_ttl`.
    /// - `GET /users/@me/guilds/{id}/member` (tightly rate limited) only for the guilds in
    ///   `role_guilds` — the ones a rule, group mapping, mapped claim or profile guild needs the
    ///   member object of (roles, server nickname and avatar) — and, when the guild list was
    ///   read, only for those the person is in. Each answer, "not a member" included,
    ///   is reused for that person and guild for `membership_ttl`.
    ///
    /// A member answer of "not a member" overrides an older guild list, so a person who just
    /// left never keeps the guild. Concurrent calls for one person take turns, so a burst asks
    /// Discord once. `now` is the app clock's time, which ages cache entries.
    pub async fn fetch_membership(
        &self,
        user_id: &str,
        access_token: &SecretString,
        role_guilds: &[String],
        want_guilds: bool,
        now: OffsetDateTime,
    ) -> Result<Membership, DiscordError> {
        let cache = self.membership_cache();
        let _turn = cache.lock_person(user_id).await;
        let mut membership = Membership::default();
        let listed = if want_guilds {
            let guilds = match cache.guilds(user_id, now) {
                Some(guilds) => guilds,
                None => {
                    let guilds: Vec<String> = self
                        .fetch_guilds(access_token)
                        .await?
                        .into_iter()
                        .map(|g| g.id)
                        .collect();
                    cache.put_guilds(user_id, guilds.clone(), now);
                    guilds
                }
            };
            membership.guilds.clone_from(&guilds);
            Some(guilds)
        } else {
            None
        };
        for (i, guild) in role_guilds.iter().enumerate() {
            let repeated = role_guilds[..i].contains(guild);
            let absent = listed.as_ref().is_some_and(|l| !l.contains(guild));
            if repeated || absent {
                continue;
            }
            let member = match cache.member(user_id, guild, now) {
                Some(member) => member,
                None => {
                    let member = self
                        .fetch_member(access_token, guild)
                        .await?
                        .map(CachedMember::from);
                    cache.put_member(user_id, guild, member.clone(), now);
                    member
                }
            };
            membership.record_member(guild, member);
        }
        Ok(membership)
    }

    /// Forgets every cached guild list and member answer of a person, so the next
    /// [`DiscordClient::fetch_membership`] asks Discord (a refresh that must re-check).
    pub fn forget_membership(&self, user_id: &str) {
        self.membership_cache().forget(user_id);
    }
}
