//! What a sign-in learns about a person from Discord: the user object (`/users/@me`) and the
//! guild membership (`/users/@me/guilds`, `/users/@me/guilds/{id}/member`) that rules and group
//! mappings need, the latter read through a short-lived cache so a burst of sign-ins
//! and refreshes stays under Discord's tight limit on the member endpoint.

use super::answers::{is_snowflake, member_answer, parse, rest_error};
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
    ///   `role_guilds` — the ones a rule or group mapping needs roles from — and, when the guild
    ///   list was read, only for those the person is in. Each answer, "not a member" included,
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
            let roles = match cache.member(user_id, guild, now) {
                Some(roles) => roles,
                None => {
                    let roles = self
                        .fetch_member(access_token, guild)
                        .await?
                        .map(|m| m.roles);
                    cache.put_member(user_id, guild, roles.clone(), now);
                    roles
                }
            };
            match roles {
                Some(roles) => {
                    if !membership.guilds.contains(guild) {
                        membership.guilds.push(guild.clone());
                    }
                    membership.roles.insert(guild.clone(), roles);
                }
                None => membership.guilds.retain(|g| g != guild),
            }
        }
        Ok(membership)
    }

    /// Forgets every cached guild list and member answer of a person, so the next
    /// [`DiscordClient::fetch_membership`] asks Discord (a refresh that must re-check).
    pub fn forget_membership(&self, user_id: &str) {
        self.membership_cache().forget(user_id);
    }
}
