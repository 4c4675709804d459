//! Membership read with the bot token (docs: resources/guild#get-guild-member,
//! reference#authentication): `GET /guilds/{guild}/members/{user}` with `Authorization: Bot …`,
//! so role rules need no `guilds.members.read` from people and re-checks need no person's token.
//! Same transport as the person's path (rate-limit buckets, 429 budget, body cap) and the same
//! membership cache.

use super::answers::{is_snowflake, member_answer, parse, rest_error};
use super::cache::CachedMember;
use super::{DiscordClient, DiscordError, DiscordRoute, Membership, api};
use time::OffsetDateTime;

impl DiscordClient {
    /// Checks the bot token with `GET /users/@me`: `Ok(bot user)`, `Unauthorized` for a token
    /// Discord refuses, other errors when Discord cannot be asked.
    pub async fn check_bot_token(&self) -> Result<api::User, DiscordError> {
        let answer = self.bot_get(DiscordRoute::Me, &["users", "@me"]).await?;
        if answer.status.is_success() {
            parse(&answer.body)
        } else {
            Err(rest_error(&answer))
        }
    }

    /// `GET /guilds/{guild_id}/members/{user_id}` with the bot token. `Ok(None)` when the person
    /// is not a member (404 Unknown Member 10007, or Unknown User 10013); Unknown Guild (the bot
    /// is not in it) is an error, so a misconfigured bot never reads as "everyone left".
    pub async fn fetch_member_by_bot(
        &self,
        guild_id: &str,
        user_id: &str,
    ) -> Result<Option<api::GuildMember>, DiscordError> {
        if !is_snowflake(guild_id) || !is_snowflake(user_id) {
            return Err(DiscordError::Config(format!(
                "guild {guild_id:?} or user {user_id:?} is not a snowflake"
            )));
        }
        let path = ["guilds", guild_id, "members", user_id];
        let answer = self.bot_get(DiscordRoute::BotMember, &path).await?;
        member_answer(
            &answer,
            &[api::codes::UNKNOWN_MEMBER, api::codes::UNKNOWN_USER],
        )
    }

    /// A person's membership in `guilds` (roles and server profiles), read with the bot token;
    /// each answer ("not a member" included) is reused for that person and guild for
    /// `membership_ttl`.
    pub async fn fetch_membership_by_bot(
        &self,
        user_id: &str,
        guilds: &[String],
        now: OffsetDateTime,
    ) -> Result<Membership, DiscordError> {
        let cache = self.membership_cache();
        let _turn = cache.lock_person(user_id).await;
        let mut membership = Membership::default();
        for (i, guild) in guilds.iter().enumerate() {
            if guilds[..i].contains(guild) {
                continue;
            }
            let member = match cache.member(user_id, guild, now) {
                Some(member) => member,
                None => {
                    let member = self
                        .fetch_member_by_bot(guild, user_id)
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
}
