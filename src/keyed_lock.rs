//! One async lock per key (a person's Discord id), created on demand and dropped when the last
//! holder or waiter leaves, so "one at a time per person" costs nothing for people nobody is
//! working on. Used for membership look-ups and for re-checks that spend a Discord refresh token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

type Slots = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// The set of per-key locks.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    slots: Slots,
}

/// Held while one key's work is in progress; see [`KeyedLocks::lock`].
pub struct KeyedGuard {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    slot: Arc<tokio::sync::Mutex<()>>,
    key: String,
    slots: Slots,
}

impl KeyedLocks {
    /// Waits until nobody else holds `key`'s lock and holds it until the guard drops. Different
    /// keys never wait for each other.
    pub async fn lock(&self, key: &str) -> KeyedGuard {
        let slot = {
            let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let guard = Arc::clone(&slot).lock_owned().await;
        KeyedGuard {
            guard: Some(guard),
            slot,
            key: key.to_owned(),
            slots: Arc::clone(&self.slots),
        }
    }

    /// How many keys have a holder or a waiter.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for KeyedGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // The map and `slot` are the only holders left: nobody waits, so the entry can go.
        // Waiters clone the slot under this same map lock, so the count cannot race.
        if Arc::strong_count(&self.slot) == 2 {
            map.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for KeyedGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedGuard")
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holders_of_one_key_take_turns_and_leave_nothing_behind() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("u").await;
        let other = locks.lock("v").await;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let locks = Arc::clone(&locks);
            async move {
                let _turn = locks.lock("u").await;
                let _ = tx.send(());
            }
        });
        // The waiter cannot get the lock while `first` holds it, whatever the scheduling.
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "the second holder of u waits");
        drop(first);
        waiter
            .await
            .expect("the waiter finishes once the first is done");
        drop(other);
        assert_eq!(locks.in_use(), 0);
    }
}
