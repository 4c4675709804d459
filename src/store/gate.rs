//! The permits in front of the SQLite connections [`Held`](super::held::Held) lends: how a
//! task waiting for the write lease gets it. Not first come, first served, and why, below.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// As many permits as slots, taken by whichever task asks while one is free, unless someone
/// has waited too long.
///
/// Not a fair (first come, first served) semaphore on purpose: a fair one hands a released
/// permit to the longest waiter, which on the other worker thread may be busy signing a token
/// for a quarter of a millisecond before it runs; meanwhile the writer sits idle and so does
/// every request queued behind it. Profiled under 64 refresh chains, both workers spent about
/// half their time waiting that way. Here a released permit goes to the first task to ask, and
/// one waiter is woken to try. So that a waiter cannot keep losing, one that has waited
/// [`STARVING_AFTER`] is served first: newcomers wait until every such waiter has its permit
/// (the same bargain as Go's `sync.Mutex`).
///
/// And a taker that finds the permit held first watches it for [`SPIN_FOR`] before it waits:
/// a request's write holds it for tens of microseconds, on the other worker thread, while a
/// task that waits is woken to the back of its worker's queue, behind every request that
/// worker has ready (about 15 ms under 64 refresh chains). Under that load, those few losers
/// made the refresh p99 four to five times the median (`wrk`: p50 15–17 ms, p99 60–95 ms);
/// watching first brought the p99 to 31–37 ms at the same rate (BENCHMARKS.md).
pub(super) struct Gate {
    free: AtomicUsize,
    released: Notify,
    /// Waiters that have waited longer than [`STARVING_AFTER`].
    starving: AtomicUsize,
}

/// How long a waiter may lose to newcomers before they let it go first.
const STARVING_AFTER: Duration = Duration::from_micros(500);

/// How long a taker watches a held permit before it waits to be woken: longer than a request's
/// write holds the lease (tens of microseconds, on the other worker thread), far shorter than
/// the queue a woken task rejoins.
const SPIN_FOR: Duration = Duration::from_micros(150);

/// A waiter counted in [`Gate::starving`]; uncounted when it gets its permit or gives up.
struct Starving<'a>(&'a Gate);

impl Drop for Starving<'_> {
    fn drop(&mut self) {
        if self.0.starving.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Newcomers that stepped aside may wait on a permit nobody holds (this waiter gave
            // up): let them look again.
            self.0.released.notify_waiters();
        }
    }
}

impl Gate {
    /// `permits` permits, all free.
    pub(super) fn new(permits: usize) -> Self {
        Self {
            free: AtomicUsize::new(permits),
            released: Notify::new(),
            starving: AtomicUsize::new(0),
        }
    }

    /// Permits free right now.
    pub(super) fn available(&self) -> usize {
        self.free.load(Ordering::Acquire)
    }

    fn try_take(&self) -> Option<Permit<'_>> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Permit(self))
    }

    /// Watches for a release for up to `within` and takes the permit it frees, unless a
    /// starving waiter other than this one (`is_starving`) must go first.
    fn spin_for_release(&self, is_starving: bool, within: Duration) -> Option<Permit<'_>> {
        let since = std::time::Instant::now();
        while since.elapsed() < within {
            let may_take = is_starving || self.starving.load(Ordering::Acquire) == 0;
            if may_take
                && self.available() > 0
                && let Some(permit) = self.try_take()
            {
                return Some(permit);
            }
            std::hint::spin_loop();
        }
        None
    }

    /// A permit, as soon as this task may have one (see [`Gate`]).
    pub(super) async fn take(&self) -> Permit<'_> {
        let since = std::time::Instant::now();
        let mut starving: Option<Starving<'_>> = None;
        loop {
            // A newcomer steps aside while someone starves; a starving waiter does not.
            let may_take = starving.is_some() || self.starving.load(Ordering::Acquire) == 0;
            if may_take && let Some(permit) = self.try_take() {
                return permit;
            }
            if may_take && let Some(permit) = self.spin_for_release(starving.is_some(), SPIN_FOR) {
                return permit;
            }
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the second look, so a release in between is not missed.
            released.as_mut().enable();
            let may_take = starving.is_some() || self.starving.load(Ordering::Acquire) == 0;
            if may_take && let Some(permit) = self.try_take() {
                return permit;
            }
            released.await;
            if starving.is_none() && since.elapsed() >= STARVING_AFTER {
                self.starving.fetch_add(1, Ordering::AcqRel);
                starving = Some(Starving(self));
            }
        }
    }
}

/// One of a [`Gate`]'s permits; given back (and a waiter woken) when dropped.
pub(super) struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.free.fetch_add(1, Ordering::AcqRel);
        if self.0.starving.load(Ordering::Acquire) > 0 {
            // The one woken might be a newcomer that must step aside: wake them all, so a
            // starving waiter is among them.
            self.0.released.notify_waiters();
        }
        self.0.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Many tasks on two threads take one permit in turns, some giving up after a millisecond:
    /// one holder at a time, nobody stranded (every patient task gets through), and no task
    /// waits without bound behind newcomers.
    #[test]
    fn the_gate_lets_one_through_at_a_time_and_starves_nobody() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let gate = Arc::new(Gate::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        let longest = runtime.block_on(async {
            let tasks: Vec<_> = (0..48)
                .map(|i| {
                    let (gate, holders) = (Arc::clone(&gate), Arc::clone(&holders));
                    tokio::spawn(async move {
                        let mut longest = Duration::ZERO;
                        for _ in 0..100 {
                            let asked = std::time::Instant::now();
                            let permit = if i % 8 == 0 {
                                // The impatient: give up after a millisecond.
                                match tokio::time::timeout(Duration::from_millis(1), gate.take())
                                    .await
                                {
                                    Ok(permit) => permit,
                                    Err(_) => continue,
                                }
                            } else {
                                gate.take().await
                            };
                            longest = longest.max(asked.elapsed());
                            assert_eq!(holders.fetch_add(1, Ordering::AcqRel), 0, "two holders");
                            // Work while holding, as a write does.
                            let until = std::time::Instant::now() + Duration::from_micros(20);
                            while std::time::Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            holders.fetch_sub(1, Ordering::AcqRel);
                            drop(permit);
                            // Work without it, as signing a token does.
                            let until = std::time::Instant::now() + Duration::from_micros(60);
                            while std::time::Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            tokio::task::yield_now().await;
                        }
                        longest
                    })
                })
                .collect();
            let mut longest = Duration::ZERO;
            for task in tasks {
                let waited = tokio::time::timeout(Duration::from_secs(60), task)
                    .await
                    .expect("a task was stranded")
                    .unwrap();
                longest = longest.max(waited);
            }
            longest
        });
        assert_eq!(gate.available(), 1, "every permit came back");
        assert_eq!(gate.starving.load(Ordering::Acquire), 0);
        // 47 others ahead at most, each ~0.1 ms: far below a second even on a loaded machine.
        assert!(
            longest < Duration::from_secs(2),
            "a task waited {longest:?}"
        );
    }

    /// A taker watching a held permit takes it as soon as another thread releases it, steps
    /// aside while a starving waiter other than itself is owed it, and gives up at its bound.
    /// (`take` watches for [`SPIN_FOR`]; the bounds here are wide so a busy machine cannot
    /// make the test flaky.)
    #[test]
    fn a_watching_taker_gets_a_release_from_another_thread_unless_a_starving_waiter_is_owed_it() {
        let gate = Arc::new(Gate::new(1));
        let held = Arc::new(std::sync::Barrier::new(2));
        let holder = {
            let (gate, held) = (Arc::clone(&gate), Arc::clone(&held));
            std::thread::spawn(move || {
                let permit = gate.try_take().expect("free");
                held.wait();
                std::thread::sleep(Duration::from_millis(5));
                drop(permit);
            })
        };
        held.wait();
        let permit = gate.spin_for_release(false, Duration::from_secs(30));
        assert!(permit.is_some(), "the release was seen");
        holder.join().unwrap();
        // Held by this test now: nobody releases, so the watch ends empty at its bound.
        assert!(
            gate.spin_for_release(false, Duration::from_millis(2))
                .is_none()
        );
        drop(permit);

        // Free, but a starving waiter is owed it: a newcomer steps aside, the starving one takes it.
        gate.starving.fetch_add(1, Ordering::AcqRel);
        assert!(
            gate.spin_for_release(false, Duration::from_millis(2))
                .is_none()
        );
        assert!(
            gate.spin_for_release(true, Duration::from_millis(2))
                .is_some()
        );
        gate.starving.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(gate.available(), 1, "every permit came back");
    }
}
