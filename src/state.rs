//! AppState: everything a request needs, built once at start-up and shared by every worker.

use crate::clients::Clients;
use crate::config::{Settings, ValidConfig};
use crate::discord::DiscordClient;
use crate::keyed_lock::KeyedLocks;
use crate::keys::KeySet;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// The one `web::Data` of the app.
pub struct AppState {
    /// Settings as written (database URL, cookie name, …).
    pub settings: Arc<Settings>,
    /// The typed, validated view of the settings.
    pub config: Arc<ValidConfig>,
    /// Persistent state.
    pub store: Arc<dyn Store>,
    /// Signing keys and the serialized JWKS.
    pub keys: Arc<KeySet>,
    /// Registered clients.
    pub clients: Arc<Clients>,
    /// The upstream Discord client.
    pub discord: DiscordClient,
    /// Wakes the back-channel logout deliverer when work is queued.
    pub logout_wakeup: Arc<tokio::sync::Notify>,
    /// Outbound HTTP for back-channel logout (short timeout, no redirects).
    pub http: reqwest::Client,
    /// Discovery document, serialized once.
    pub discovery: bytes::Bytes,
    /// Time source.
    pub clock: Clock,
    /// One Discord membership re-check per person at a time in this process (the store's
    /// lease extends the rule across processes).
    pub rechecks: KeyedLocks,
    /// Access tokens whose signature was already checked (see [`crate::tokens::VerifiedTokens`]).
    pub verified: crate::tokens::VerifiedTokens,
    /// Seals kept Discord tokens, built once from `secrets.encryption_key`.
    pub sealer: Option<crate::sealed::Sealer>,
    /// The optional bot's Gateway connection: state and counters (`/readyz` details).
    pub live: Arc<crate::discord::gateway::GatewayStatus>,
}

/// Wall-clock time plus an adjustable offset, so tests can move time forward without sleeping.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The current time as the app sees it.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

impl AppState {
    /// What the protocol flows may use of this state.
    pub fn context(&self) -> crate::flows::Context<'_> {
        crate::flows::Context {
            config: &self.config,
            store: self.store.as_ref(),
            keys: &self.keys,
            clients: &self.clients,
            discord: &self.discord,
            clock: &self.clock,
            logout_wakeup: &self.logout_wakeup,
            rechecks: &self.rechecks,
            verified: &self.verified,
            sealer: self.sealer.as_ref(),
        }
    }

    /// The `sub` a client sees for a person (pairwise when the client asks for it).
    pub fn subject(&self, client: &crate::config::ValidClient, user_id: &str) -> String {
        crate::claims::subject(
            self.config.pairwise_key.as_ref(),
            client.id.as_str(),
            client.pairwise_subject,
            user_id,
        )
    }
}
