//! Request limits: the rate type of `[limits]` ("10/min") and an in-memory keyed limiter.
//!
//! The limiter is the generic cell rate algorithm (GCRA): each key may spend `count` events at
//! once, then one more every `per / count`. It keeps one timestamp per key, forgets keys whose
//! budget has refilled, and is per process (several processes each allow the full rate).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// A number of events per period (at most a day), written `"10/min"`, `"50/s"`, `"100/h"`, `"1000/d"` or with a
/// duration, `"5/30s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    per: Duration,
}

impl Rate {
    /// Stands in for a rate that failed validation (start-up stops anyway).
    pub const PLACEHOLDER: Self = Self {
        count: 1,
        per: Duration::from_secs(1),
    };

    /// `count` events per `per`; `None` when either is zero.
    pub fn new(count: u32, per: Duration) -> Option<Self> {
        (count > 0 && !per.is_zero()).then_some(Self { count, per })
    }

    /// Parses `"<count>/<unit or duration>"`; the error says what is expected.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let expected = || format!("{raw:?} is not a rate like \"10/min\", \"50/s\" or \"5/30s\"");
        let (count, per) = raw.trim().split_once('/').ok_or_else(expected)?;
        let count: u32 = count.trim().parse().map_err(|_| expected())?;
        let per = per.trim();
        // A bare unit ("min") means one of it; humantime reads "1min", "30s", "1h" alike.
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(per)
        } else {
            humantime::parse_duration(&format!("1{per}"))
        }
        .map_err(|_| expected())?;
        // Budgets refill within a day at most; a longer period is almost surely a typo, and
        // the limiter's clock arithmetic stays far from overflowing.
        if per > Duration::from_secs(24 * 3600) {
            return Err(format!("{raw:?}: the period must be at most a day"));
        }
        Self::new(count, per)
            .ok_or_else(|| format!("{raw:?}: the count and the period must be above zero"))
    }

    /// Events allowed at once (the burst).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Time between two events at the sustained rate.
    fn interval(&self) -> time::Duration {
        time::Duration::try_from(self.per / self.count).unwrap_or(time::Duration::MAX)
    }

    /// How far ahead of now the theoretical arrival time may run: the burst minus one event.
    fn tolerance(&self) -> time::Duration {
        time::Duration::try_from(self.per).unwrap_or(time::Duration::MAX) - self.interval()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, humantime::format_duration(self.per))
    }
}

/// Most keys a limiter tracks at once; beyond it (after forgetting refilled keys) new keys are
/// not tracked, so an attacker spraying addresses cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

/// When full, refilled keys are looked for at most this often: a scan of every key on every
/// request would make a full limiter an attack of its own.
const PRUNE_EVERY: time::Duration = time::Duration::seconds(1);

/// Per-key budgets for one kind of event (GCRA, one "theoretical arrival time" per key).
pub struct KeyedLimiter<K> {
    inner: Mutex<Arrivals<K>>,
}

struct Arrivals<K> {
    by_key: HashMap<K, OffsetDateTime>,
    pruned_at: Option<OffsetDateTime>,
}

impl<K: Hash + Eq + Clone> Default for KeyedLimiter<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Arrivals {
                by_key: HashMap::new(),
                pruned_at: None,
            }),
        }
    }
}

impl<K: Hash + Eq + Clone> Arrivals<K> {
    /// Whether `key` has (or may get) a slot; forgets refilled keys first when full.
    fn room_for(&mut self, key: &K, now: OffsetDateTime) -> bool {
        if self.by_key.len() < MAX_KEYS || self.by_key.contains_key(key) {
            return true;
        }
        if self.pruned_at.is_none_or(|at| now - at >= PRUNE_EVERY) {
            self.pruned_at = Some(now);
            self.by_key.retain(|_, tat| *tat > now);
        }
        if self.by_key.len() >= MAX_KEYS {
            tracing::warn!("rate limiter full; a new key is not tracked");
            return false;
        }
        true
    }

    fn wait(&self, key: &K, rate: Rate, now: OffsetDateTime) -> Option<Duration> {
        let tat = self.by_key.get(key).copied()?.max(now);
        let earliest = tat - rate.tolerance();
        (earliest > now).then(|| Duration::try_from(earliest - now).unwrap_or_default())
    }

    fn spend(&mut self, key: &K, rate: Rate, now: OffsetDateTime) {
        if !self.room_for(key, now) {
            return;
        }
        let tat = self.by_key.get(key).copied().unwrap_or(now).max(now);
        self.by_key.insert(key.clone(), tat + rate.interval());
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// How long `key` must wait before it may spend one more event; `None` when it may now.
    pub fn wait(&self, key: &K, rate: Rate, now: OffsetDateTime) -> Option<Duration> {
        self.inner.lock().ok()?.wait(key, rate, now)
    }

    /// Spends one event for `key` (even past its budget: events that happened count).
    pub fn spend(&self, key: &K, rate: Rate, now: OffsetDateTime) {
        if let Ok(mut arrivals) = self.inner.lock() {
            arrivals.spend(key, rate, now);
        }
    }

    /// Spends one event for `key` if its budget allows it now; otherwise spends nothing (a
    /// refused request is not an event) and says how long to wait.
    pub fn take(&self, key: &K, rate: Rate, now: OffsetDateTime) -> Result<(), Duration> {
        let Ok(mut arrivals) = self.inner.lock() else {
            return Ok(());
        };
        match arrivals.wait(key, rate, now) {
            Some(wait) => Err(wait),
            None => {
                arrivals.spend(key, rate, now);
                Ok(())
            }
        }
    }

    /// How many keys are tracked (tests check that memory stays bounded).
    pub fn tracked(&self) -> usize {
        self.inner.lock().map_or(0, |a| a.by_key.len())
    }
}

/// The request-rate groups of `[limits]`: which endpoints share a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `/authorize`, `/callback/discord` (people's browsers).
    Authorize,
    /// `/token`, `/revoke`, `/introspect` (apps with client credentials).
    Token,
    /// `/userinfo` (apps with an access token).
    Userinfo,
}

/// The request-rate budgets of this process, kept across config reloads (a reload changes the
/// rates, not what was already spent).
#[derive(Default)]
pub struct RequestLimiters {
    by_source: KeyedLimiter<(RequestKind, IpAddr)>,
    by_client: KeyedLimiter<String>,
    user_code_failures: KeyedLimiter<IpAddr>,
}

impl RequestLimiters {
    /// Spends one request of `kind` from `source` (IPv6 by its /64), or says how long to wait.
    pub fn source(
        &self,
        kind: RequestKind,
        source: IpAddr,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<(), Duration> {
        let rate = match kind {
            RequestKind::Authorize => limits.authorize_per_ip,
            RequestKind::Token => limits.token_per_ip,
            RequestKind::Userinfo => limits.userinfo_per_ip,
        };
        self.by_source.take(&(kind, source_key(source)), rate, now)
    }

    /// Spends one token-endpoint-style request of an authenticated client, or says how long
    /// to wait.
    pub fn client(
        &self,
        client_id: &str,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<(), Duration> {
        self.by_client
            .take(&client_id.to_owned(), limits.token_per_client, now)
    }

    /// How long `source` must wait before it may type another user code on `/device` (after
    /// too many wrong ones); `None` when it may now.
    pub fn user_code_wait(
        &self,
        source: IpAddr,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        self.user_code_failures
            .wait(&source_key(source), limits.user_code_failures_per_ip, now)
    }

    /// Counts a wrong user code typed from `source`.
    pub fn user_code_failed(&self, source: IpAddr, limits: &Limits, now: OffsetDateTime) {
        self.user_code_failures
            .spend(&source_key(source), limits.user_code_failures_per_ip, now);
    }
}

/// The key a source address is limited under: IPv4 as is, IPv6 by its /64 (one subscriber
/// usually holds a whole /64, so single addresses would cost an attacker nothing).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    }
}

/// The `[limits]` section, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed client authentications per source address.
    pub failed_auth_per_ip: Rate,
    /// Failed client authentications per (registered) client id.
    pub failed_auth_per_client: Rate,
    /// Discord logins started and not yet back, per source address.
    pub pending_logins_per_ip: u32,
    /// `/authorize` and `/callback/discord` requests per source address.
    pub authorize_per_ip: Rate,
    /// `/token`, `/revoke`, `/introspect` requests per source address.
    pub token_per_ip: Rate,
    /// `/token`, `/revoke`, `/introspect` requests per authenticated client id.
    pub token_per_client: Rate,
    /// `/userinfo` requests per source address.
    pub userinfo_per_ip: Rate,
    /// Wrong user codes typed on `/device`, per source address.
    pub user_code_failures_per_ip: Rate,
    /// How many times one user code may be entered.
    pub user_code_entries: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = time::macros::datetime!(2025-01-01 0:00 UTC);

    #[test]
    fn rates_read_units_and_durations() {
        let per_min = Rate::parse("10/min").unwrap();
        assert_eq!(
            (per_min.count(), per_min.per()),
            (10, Duration::from_secs(60))
        );
        assert_eq!(Rate::parse("50/s").unwrap().per(), Duration::from_secs(1));
        assert_eq!(Rate::parse("5/30s").unwrap().per(), Duration::from_secs(30));
        assert_eq!(
            Rate::parse(" 100 / h ").unwrap().per(),
            Duration::from_secs(3600)
        );
        for bad in [
            "",
            "10",
            "x/min",
            "10/fortnightly",
            "0/min",
            "10/0s",
            "-1/s",
            "1/1000000y",
            "10/2d",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_key_spends_its_burst_then_one_event_per_interval() {
        let limiter = KeyedLimiter::default();
        let rate = Rate::parse("3/min").unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.wait(&"a", rate, T0), None);
            limiter.spend(&"a", rate, T0);
        }
        assert_eq!(limiter.wait(&"a", rate, T0), Some(Duration::from_secs(20)));
        assert_eq!(
            limiter.wait(&"b", rate, T0),
            None,
            "other keys are unaffected"
        );
        let later = T0 + time::Duration::seconds(20);
        assert_eq!(limiter.wait(&"a", rate, later), None);
    }

    #[test]
    fn take_refuses_past_the_burst_without_spending() {
        let limiter = KeyedLimiter::default();
        let rate = Rate::parse("2/s").unwrap();
        assert_eq!(limiter.take(&"a", rate, T0), Ok(()));
        assert_eq!(limiter.take(&"a", rate, T0), Ok(()));
        assert_eq!(
            limiter.take(&"a", rate, T0),
            Err(Duration::from_millis(500))
        );
        assert_eq!(
            limiter.take(&"a", rate, T0),
            Err(Duration::from_millis(500)),
            "refusals cost nothing"
        );
        let later = T0 + time::Duration::milliseconds(500);
        assert_eq!(limiter.take(&"a", rate, later), Ok(()));
    }

    #[test]
    fn a_full_limiter_forgets_refilled_keys_and_stays_bounded() {
        let limiter = KeyedLimiter::default();
        let rate = Rate::parse("1/s").unwrap();
        for i in 0..MAX_KEYS as u32 {
            limiter.spend(&i, rate, T0);
        }
        limiter.spend(&u32::MAX, rate, T0);
        assert_eq!(
            limiter.tracked(),
            MAX_KEYS,
            "no room while every key is live"
        );
        let later = T0 + time::Duration::seconds(2);
        limiter.spend(&u32::MAX, rate, later);
        assert_eq!(limiter.tracked(), 1, "refilled keys are forgotten");
    }

    #[test]
    fn ipv6_sources_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
