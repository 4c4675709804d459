//! What `/userinfo` and the access-token check need to decide, kept in this process on either
//! backend (on Postgres each lookup would be a round trip; on SQLite a read transaction, whose
//! file locks and statement cost halved `/userinfo`): per access token (its grant and `jti`),
//! the person, their membership snapshot and until when the grant and its session live.
//! Entries are dropped when the change feed (`change_feed.rs`) reports that their
//! grant, session, person or `jti` changed in any process; and the cache answers only while
//! that feed has been read within [`FRESH_FOR`], so a change reaches every process's answers
//! within a second, or the process asks the database.

use super::TokenHolder;
use crate::domain::{DiscordId, GrantId, SessionId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long after the last read of the change feed the cache may still answer. The feed is
/// read every [`super::change_feed::POLL_EVERY`]; a change is in force everywhere within this
/// plus one poll, under a second.
pub const FRESH_FOR: Duration = Duration::from_millis(750);

/// Entries per generation: the cache holds at most twice this many tokens.
const GENERATION: usize = 2048;

/// What a change reports as changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A grant (revoked, expired, deleted).
    Grant(String),
    /// A session (ended, deleted).
    Session(String),
    /// A person (profile, membership, deleted).
    User(String),
    /// One access token revoked by its `jti`.
    Jti(String),
    /// The shared keys folder (`keys revoke`, `keys rotate`): no cached answer depends on it
    /// (signatures are checked before the cache is asked); the process re-reads the folder.
    Keys,
    /// Anything else: drop everything.
    All,
}

/// One token's answer and what it depends on.
#[derive(Clone)]
struct Entry {
    holder: TokenHolder,
    /// The earlier of the grant's and its session's expiry.
    live_until: OffsetDateTime,
    session: Option<SessionId>,
    user: DiscordId,
}

impl Entry {
    fn depends_on(&self, grant: &GrantId, jti: &str, changed: &Changed) -> bool {
        match changed {
            Changed::Grant(id) => grant.as_str() == id,
            Changed::Session(id) => self.session.as_ref().is_some_and(|s| s.as_str() == id),
            Changed::User(id) => self.user.as_str() == id,
            Changed::Jti(id) => jti == id,
            Changed::Keys => false,
            Changed::All => true,
        }
    }
}

type Key = (GrantId, String);

/// Two generations: lookups promote from the old one; when the new one is full, the old one
/// goes. An approximate LRU with a hard bound and no per-entry bookkeeping.
#[derive(Default)]
struct Generations {
    new: HashMap<Key, Entry>,
    old: HashMap<Key, Entry>,
}

/// The cache (see the module docs).
pub struct HolderCache {
    entries: Mutex<Generations>,
    /// Bumped whenever changes are applied: a lookup that read the database while it moved
    /// does not store what it read (it may predate the change).
    applied: AtomicU64,
    /// Milliseconds since `epoch` at the last successful read of the change feed (0: never).
    confirmed_ms: AtomicU64,
    epoch: Instant,
}

impl Default for HolderCache {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            applied: AtomicU64::new(0),
            confirmed_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl std::fmt::Debug for HolderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderCache")
            .field("fresh", &self.is_fresh())
            .finish_non_exhaustive()
    }
}

/// A lookup's ticket: what the cache looked like when the database was asked.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl HolderCache {
    /// Whether the change feed was read recently enough for the cache to answer.
    pub fn is_fresh(&self) -> bool {
        let confirmed = self.confirmed_ms.load(Ordering::Acquire);
        confirmed != 0
            && self.since_epoch_ms().saturating_sub(confirmed) < FRESH_FOR.as_millis() as u64
    }

    fn since_epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The change feed was read and everything it reported applied.
    pub fn confirm(&self) {
        self.confirmed_ms
            .store(self.since_epoch_ms(), Ordering::Release);
    }

    /// The token's answer, when cached, fresh and still live at `now`; otherwise `Err` with the
    /// ticket to store what the database answers.
    pub fn get(
        &self,
        grant: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<TokenHolder, Ticket> {
        let ticket = Ticket(self.applied.load(Ordering::Acquire));
        if !self.is_fresh() {
            return Err(ticket);
        }
        let Ok(mut generations) = self.entries.lock() else {
            return Err(ticket);
        };
        let key = (grant.clone(), jti.to_owned());
        let entry = match generations.new.get(&key) {
            Some(entry) => entry.clone(),
            None => match generations.old.remove(&key) {
                Some(entry) => {
                    Self::insert_into(&mut generations, key.clone(), entry.clone());
                    entry
                }
                None => return Err(ticket),
            },
        };
        if entry.live_until <= now {
            generations.new.remove(&key);
            return Err(ticket);
        }
        Ok(entry.holder)
    }

    /// Stores what the database answered for a live token, unless a change was applied since
    /// `ticket` was taken.
    pub fn put(
        &self,
        ticket: Ticket,
        grant: &GrantId,
        jti: &str,
        holder: &TokenHolder,
        live_until: OffsetDateTime,
        session: Option<SessionId>,
    ) {
        let Ok(mut generations) = self.entries.lock() else {
            return;
        };
        // Checked under the lock that `apply` takes too, so no change slips in between.
        if self.applied.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        let entry = Entry {
            holder: holder.clone(),
            live_until,
            session,
            user: holder.user.id.clone(),
        };
        Self::insert_into(&mut generations, (grant.clone(), jti.to_owned()), entry);
    }

    fn insert_into(generations: &mut Generations, key: Key, entry: Entry) {
        if generations.new.len() >= GENERATION {
            generations.old = std::mem::take(&mut generations.new);
        }
        generations.new.insert(key, entry);
    }

    /// Drops every entry that depends on one of `changes`.
    pub fn apply(&self, changes: &[Changed]) {
        if changes.is_empty() {
            return;
        }
        let Ok(mut generations) = self.entries.lock() else {
            return;
        };
        self.applied.fetch_add(1, Ordering::AcqRel);
        if changes.contains(&Changed::All) {
            *generations = Generations::default();
            return;
        }
        let keep = |(grant, jti): &Key, entry: &mut Entry| {
            !changes.iter().any(|c| entry.depends_on(grant, jti, c))
        };
        generations.new.retain(keep);
        generations.old.retain(keep);
    }

    /// How many tokens are cached (tests; the bound).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |g| g.new.len() + g.old.len())
    }

    /// Whether nothing is cached.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
