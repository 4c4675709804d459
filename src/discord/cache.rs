//! A short-lived cache of Discord membership answers, so a burst of sign-ins and refreshes
//! stays under Discord's tight limit on the member endpoint. Keyed by person (and guild);
//! entries older than `discord.membership_ttl` are ignored and evicted. Concurrent look-ups
//! for one person take turns ([`MembershipCache::lock_person`]), so a burst of sign-ins asks
//! Discord once and the rest read the answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;

/// Most entries kept; past this, expired ones are dropped, then the whole map if need be.
const MAX_ENTRIES: usize = 10_000;

/// One cached answer and when it was fetched.
type Entry<T> = (T, OffsetDateTime);

/// Roles in a guild (`None`: not a member), keyed by (person, guild).
type MemberMap = HashMap<(String, String), Entry<Option<Vec<String>>>>;

/// Guild lists per person and member roles per (person, guild).
#[derive(Debug)]
pub struct MembershipCache {
    ttl: Duration,
    guilds: Mutex<HashMap<String, Entry<Vec<String>>>>,
    members: Mutex<MemberMap>,
    /// One async lock per person with a look-up in progress; removed when the last holder leaves.
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while one person's membership is being looked up; see [`MembershipCache::lock_person`].
pub struct PersonLock {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    slot: Arc<tokio::sync::Mutex<()>>,
    user: String,
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for PersonLock {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map and `slot` are the only holders left: nobody waits, so the entry can go.
        // Waiters clone the slot under this same map lock, so the count cannot race.
        if Arc::strong_count(&self.slot) == 2 {
            map.remove(&self.user);
        }
    }
}

impl std::fmt::Debug for PersonLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonLock")
            .field("user", &self.user)
            .finish()
    }
}

impl MembershipCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            guilds: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            in_flight: Arc::default(),
        }
    }

    /// Waits until no other look-up for `user` is in progress and holds off new ones until the
    /// returned lock drops. Look-ups for different people do not wait for each other.
    pub async fn lock_person(&self, user: &str) -> PersonLock {
        let slot = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(user.to_owned()).or_default())
        };
        let guard = Arc::clone(&slot).lock_owned().await;
        PersonLock {
            guard: Some(guard),
            slot,
            user: user.to_owned(),
            in_flight: Arc::clone(&self.in_flight),
        }
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

    /// The person's roles in a guild (`Some(None)`: not a member), if fetched within the TTL.
    pub fn member(
        &self,
        user: &str,
        guild: &str,
        now: OffsetDateTime,
    ) -> Option<Option<Vec<String>>> {
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
        roles: Option<Vec<String>>,
        now: OffsetDateTime,
    ) {
        if let Ok(mut map) = self.members.lock() {
            self.make_room(&mut map, now);
            map.insert((user.to_owned(), guild.to_owned()), (roles, now));
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
        cache.put_member("u", "g", Some(vec!["r".into()]), t0);
        cache.put_guilds("u", vec!["g".into()], t0);
        assert_eq!(
            cache.member("u", "g", t0 + Duration::from_secs(299)),
            Some(Some(vec!["r".into()]))
        );
        assert_eq!(cache.member("u", "g", t0 + Duration::from_secs(300)), None);
        cache.forget("u");
        assert_eq!(cache.guilds("u", t0), None);
        assert_eq!(cache.member("u", "g", t0), None);
    }

    #[tokio::test]
    async fn lookups_for_one_person_take_turns_and_leave_nothing_behind() {
        let cache = Arc::new(MembershipCache::new(Duration::from_secs(300)));
        let first = cache.lock_person("u").await;
        let other = cache.lock_person("v").await;
        let waiter = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move { drop(cache.lock_person("u").await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second look-up for u waits");
        drop(first);
        waiter
            .await
            .expect("waiter finishes once the first is done");
        drop(other);
        let in_flight = cache.in_flight.lock().expect("lock");
        assert!(in_flight.is_empty(), "{:?}", in_flight.keys());
    }
}
