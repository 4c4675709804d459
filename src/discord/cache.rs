//! A short-lived cache of Discord membership answers, so a burst of sign-ins and refreshes
//! stays under Discord's tight limit on the member endpoint. Keyed by person (and guild);
//! entries older than `discord.membership_ttl` are ignored and evicted. Concurrent look-ups
//! for one person take turns ([`MembershipCache::lock_person`]), so a burst of sign-ins asks
//! Discord once and the rest read the answer.

use crate::keyed_lock::{KeyedGuard, KeyedLocks};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// Most entries kept; past this, expired ones are dropped, then the whole map if need be.
const MAX_ENTRIES: usize = 10_000;

/// One cached answer and when it was fetched.
type Entry<T> = (T, OffsetDateTime);

/// What is kept of one member object: roles and the server profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachedMember {
    /// Role ids.
    pub roles: Vec<String>,
    /// Server nickname.
    pub nick: Option<String>,
    /// Server avatar hash.
    pub avatar: Option<String>,
}

impl From<super::api::GuildMember> for CachedMember {
    fn from(m: super::api::GuildMember) -> Self {
        Self {
            roles: m.roles,
            nick: m.nick,
            avatar: m.avatar,
        }
    }
}

/// A member object (`None`: not a member), keyed by (person, guild).
type MemberMap = HashMap<(String, String), Entry<Option<CachedMember>>>;

/// Guild lists per person and member roles per (person, guild).
#[derive(Debug)]
pub struct MembershipCache {
    ttl: Duration,
    guilds: Mutex<HashMap<String, Entry<Vec<String>>>>,
    members: Mutex<MemberMap>,
    /// One look-up per person at a time.
    in_flight: KeyedLocks,
}

impl MembershipCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            guilds: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            in_flight: KeyedLocks::default(),
        }
    }

    /// Waits until no other look-up for `user` is in progress and holds off new ones until the
    /// returned lock drops. Look-ups for different people do not wait for each other.
    pub async fn lock_person(&self, user: &str) -> KeyedGuard {
        self.in_flight.lock(user).await
    }

    fn fresh(&self, at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - at < self.ttl
    }

    /// The person's guild ids, if fetched within the TTL.
    pub fn guilds(&self, user: &str, now: OffsetDateTime) -> Option<Vec<String>> {
        let map = self.guilds.lock().ok()?;
        map.get(user)
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(g, _)| g.clone())
    }

    /// Remembers a guild list.
    pub fn put_guilds(&self, user: &str, guilds: Vec<String>, now: OffsetDateTime) {
        if let Ok(mut map) = self.guilds.lock() {
            self.make_room(&mut map, now);
            map.insert(user.to_owned(), (guilds, now));
        }
    }

    /// The person's member object in a guild (`Some(None)`: not a member), if fetched within
    /// the TTL.
    pub fn member(
        &self,
        user: &str,
        guild: &str,
        now: OffsetDateTime,
    ) -> Option<Option<CachedMember>> {
        let map = self.members.lock().ok()?;
        map.get(&(user.to_owned(), guild.to_owned()))
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(r, _)| r.clone())
    }

    /// Remembers a member answer.
    pub fn put_member(
        &self,
        user: &str,
        guild: &str,
        member: Option<CachedMember>,
        now: OffsetDateTime,
    ) {
        if let Ok(mut map) = self.members.lock() {
            self.make_room(&mut map, now);
            map.insert((user.to_owned(), guild.to_owned()), (member, now));
        }
    }

    /// Drops everything about a person (a refresh that must ask Discord afresh).
    pub fn forget(&self, user: &str) {
        if let Ok(mut map) = self.guilds.lock() {
            map.remove(user);
        }
        if let Ok(mut map) = self.members.lock() {
            map.retain(|(u, _), _| u != user);
        }
    }

    fn make_room<K, V>(&self, map: &mut HashMap<K, Entry<V>>, now: OffsetDateTime) {
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, at)| self.fresh(*at, now));
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl_and_forget_drops_a_person() {
        let cache = MembershipCache::new(Duration::from_secs(300));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let member = CachedMember {
            roles: vec!["r".into()],
            ..CachedMember::default()
        };
        cache.put_member("u", "g", Some(member.clone()), t0);
        cache.put_guilds("u", vec!["g".into()], t0);
        assert_eq!(
            cache.member("u", "g", t0 + Duration::from_secs(299)),
            Some(Some(member))
        );
        assert_eq!(cache.member("u", "g", t0 + Duration::from_secs(300)), None);
        cache.forget("u");
        assert_eq!(cache.guilds("u", t0), None);
        assert_eq!(cache.member("u", "g", t0), None);
    }
}
