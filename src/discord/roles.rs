//! Role names of a guild, read with the bot token (`GET /guilds/{guild.id}/roles`, docs:
//! resources/guild#get-guild-roles; only a bot in the server may list them) and kept per guild
//! for `discord.membership_ttl`, so a burst of sign-ins reads the list once. The bot's Gateway
//! role events correct an entry at once ([`RoleNameCache::set_name`], [`RoleNameCache::forget`])
//! in the process holding the connection; the others see a rename within the TTL.

use super::answers::{is_snowflake, parse, rest_error};
use super::{DiscordClient, DiscordError, DiscordRoute, api};
use crate::keyed_lock::KeyedLocks;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// Most guilds kept; past this, expired entries are dropped, then all of them.
const MAX_GUILDS: usize = 1_000;

/// A guild's role names and when its role list was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNames {
    /// Role id → name.
    pub names: BTreeMap<String, String>,
    /// When Discord was asked (a Gateway event may have corrected a name since).
    pub read_at: OffsetDateTime,
}

/// Role lists per guild, each trusted for the TTL.
#[derive(Debug)]
pub struct RoleNameCache {
    ttl: Duration,
    guilds: Mutex<HashMap<String, RoleNames>>,
    /// One read per guild at a time.
    in_flight: KeyedLocks,
}

impl RoleNameCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            guilds: Mutex::new(HashMap::new()),
            in_flight: KeyedLocks::default(),
        }
    }

    /// The guild's role names, if read within the TTL.
    pub fn get(&self, guild: &str, now: OffsetDateTime) -> Option<RoleNames> {
        let map = self.guilds.lock().ok()?;
        map.get(guild)
            .filter(|entry| now - entry.read_at < self.ttl)
            .cloned()
    }

    /// Remembers a role list read at `read_at`.
    pub fn put(&self, guild: &str, names: BTreeMap<String, String>, read_at: OffsetDateTime) {
        if let Ok(mut map) = self.guilds.lock() {
            if map.len() >= MAX_GUILDS {
                map.retain(|_, e| read_at - e.read_at < self.ttl);
                if map.len() >= MAX_GUILDS {
                    map.clear();
                }
            }
            map.insert(guild.to_owned(), RoleNames { names, read_at });
        }
    }

    /// A role created or renamed (Gateway `GUILD_ROLE_CREATE` / `GUILD_ROLE_UPDATE`): the entry,
    /// if any, takes the new name and keeps its age.
    pub fn set_name(&self, guild: &str, role: &str, name: &str) {
        if let Ok(mut map) = self.guilds.lock() {
            if let Some(entry) = map.get_mut(guild) {
                entry.names.insert(role.to_owned(), name.to_owned());
            }
        }
    }

    /// A role deleted (Gateway `GUILD_ROLE_DELETE`): the entry, if any, loses it.
    pub fn remove_role(&self, guild: &str, role: &str) {
        if let Ok(mut map) = self.guilds.lock() {
            if let Some(entry) = map.get_mut(guild) {
                entry.names.remove(role);
            }
        }
    }

    /// Drops a guild's entry: the next read asks Discord.
    pub fn forget(&self, guild: &str) {
        if let Ok(mut map) = self.guilds.lock() {
            map.remove(guild);
        }
    }
}

impl DiscordClient {
    /// `GET /guilds/{guild_id}/roles` with the bot token: every role of the guild. An error
    /// when Discord refuses (the bot is not in the guild: 404 Unknown Guild, or 403).
    pub async fn fetch_roles_by_bot(&self, guild_id: &str) -> Result<Vec<api::Role>, DiscordError> {
        if !is_snowflake(guild_id) {
            return Err(DiscordError::Config(format!(
                "guild id {guild_id:?} is not a snowflake"
            )));
        }
        let answer = self
            .bot_get(DiscordRoute::BotRoles, &["guilds", guild_id, "roles"])
            .await?;
        if answer.status.is_success() {
            parse(&answer.body)
        } else {
            Err(rest_error(&answer))
        }
    }

    /// The guild's role names: from the cache when read within `discord.membership_ttl`, else
    /// read through the bot (one read per guild at a time; the others wait for it).
    pub async fn guild_role_names(
        &self,
        guild_id: &str,
        now: OffsetDateTime,
    ) -> Result<RoleNames, DiscordError> {
        let cache = self.role_name_cache();
        if let Some(hit) = cache.get(guild_id, now) {
            return Ok(hit);
        }
        let _turn = cache.in_flight.lock(guild_id).await;
        if let Some(hit) = cache.get(guild_id, now) {
            return Ok(hit);
        }
        let names: BTreeMap<String, String> = self
            .fetch_roles_by_bot(guild_id)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        cache.put(guild_id, names.clone(), now);
        Ok(RoleNames {
            names,
            read_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl_and_events_correct_them_without_renewing_them() {
        let cache = RoleNameCache::new(Duration::from_secs(300));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let names = BTreeMap::from([("1".to_owned(), "Staff".to_owned())]);
        cache.put("g", names, t0);
        cache.set_name("g", "1", "Moderators");
        cache.set_name("other", "1", "ignored: no entry");
        let later = t0 + Duration::from_secs(299);
        let hit = cache.get("g", later).expect("fresh");
        assert_eq!(hit.names["1"], "Moderators");
        assert_eq!(hit.read_at, t0, "an event does not make the list younger");
        assert!(cache.get("other", t0).is_none());
        cache.remove_role("g", "1");
        assert!(cache.get("g", later).is_some_and(|e| e.names.is_empty()));
        assert!(cache.get("g", t0 + Duration::from_secs(300)).is_none());
        cache.forget("g");
        assert!(cache.get("g", t0).is_none());
    }
}
