//! What the live-membership connection is doing, readable at any time (for `/readyz` details
//! and the `guildgate_live_membership_*` metrics): connection state, events by type,
//! deprovisionings.

use super::events::EventKind;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Another process holds the Gateway connection (Postgres advisory lock).
    Standby,
    /// Connecting, identifying or resuming.
    Connecting,
    /// Receiving events.
    Connected,
    /// Lost; reconnecting with backoff.
    Disconnected,
    /// Discord refused the bot (bad token or the server-members intent is not enabled).
    Refused,
}

impl ConnectionState {
    /// Every state, in the order of their numbers.
    pub const ALL: [Self; 5] = [
        Self::Standby,
        Self::Connecting,
        Self::Connected,
        Self::Disconnected,
        Self::Refused,
    ];

    /// The state's name (as in `/readyz` details and the metrics' `state` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Refused => "refused",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Standby,
            1 => Self::Connecting,
            2 => Self::Connected,
            4 => Self::Refused,
            _ => Self::Disconnected,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Standby => 0,
            Self::Connecting => 1,
            Self::Connected => 2,
            Self::Disconnected => 3,
            Self::Refused => 4,
        }
    }
}

/// Shared counters and state of the live-membership connection.
#[derive(Debug)]
pub struct GatewayStatus {
    state: AtomicU8,
    events: [AtomicU64; EventKind::ALL.len()],
    deprovisionings: AtomicU64,
    reconnects: AtomicU64,
    catch_ups: AtomicU64,
    last_problem: Mutex<Option<String>>,
}

impl Default for GatewayStatus {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(ConnectionState::Standby.as_u8()),
            events: Default::default(),
            deprovisionings: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            last_problem: Mutex::new(None),
        }
    }
}

/// A point-in-time copy, serialized into `/readyz` details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnapshot {
    /// Connection state.
    pub state: ConnectionState,
    /// `GUILD_MEMBER_REMOVE` events received.
    pub member_remove_events: u64,
    /// `GUILD_BAN_ADD` events received.
    pub ban_add_events: u64,
    /// `GUILD_MEMBER_UPDATE` events received.
    pub member_update_events: u64,
    /// `GUILD_ROLE_CREATE`, `GUILD_ROLE_UPDATE` and `GUILD_ROLE_DELETE` events received.
    pub role_events: u64,
    /// Events that ended at least one grant or session.
    pub deprovisionings: u64,
    /// Connections lost and re-established.
    pub reconnects: u64,
    /// Catch-ups after an outage (members re-read).
    pub catch_ups: u64,
    /// The last problem, if any (never contains the token).
    pub last_problem: Option<String>,
}

impl GatewayStatus {
    /// Sets the connection state.
    pub fn set_state(&self, state: ConnectionState) {
        self.state.store(state.as_u8(), Ordering::Relaxed);
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Counts one received event.
    pub fn record_event(&self, kind: EventKind) {
        let i = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.events[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one event that ended access.
    pub fn record_deprovisioning(&self) {
        self.deprovisionings.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one reconnect.
    pub fn record_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one catch-up.
    pub fn record_catch_up(&self) {
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers the last problem (shown in `/readyz` details).
    pub fn record_problem(&self, problem: impl Into<String>) {
        if let Ok(mut last) = self.last_problem.lock() {
            *last = Some(problem.into());
        }
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> StatusSnapshot {
        let count = |kind: EventKind| {
            let i = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            self.events[i].load(Ordering::Relaxed)
        };
        StatusSnapshot {
            state: self.state(),
            member_remove_events: count(EventKind::MemberRemove),
            ban_add_events: count(EventKind::BanAdd),
            member_update_events: count(EventKind::MemberUpdate),
            role_events: count(EventKind::RoleCreate)
                + count(EventKind::RoleUpdate)
                + count(EventKind::RoleDelete),
            deprovisionings: self.deprovisionings.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
            last_problem: self.last_problem.lock().ok().and_then(|p| p.clone()),
        }
    }
}
