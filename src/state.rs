//! AppState: everything a request needs, built once at start-up and shared by every worker.

use crate::clients::Clients;
use crate::config::{Settings, ValidConfig};
use crate::discord::DiscordClient;
use crate::keyed_lock::KeyedLocks;
use crate::keys::KeySet;
use crate::store::Store;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// The one `web::Data` of the app.
pub struct AppState {
    /// Settings as written at start-up (database URL, cookie name, …): what a reload cannot
    /// change is read from here.
    pub settings: Arc<Settings>,
    /// Whether the issuer is `https` (restart-only, like the issuer): read on every answer
    /// (`Strict-Transport-Security`) without taking the live configuration's lock.
    pub https: bool,
    /// The configuration that reloads swap: read one consistent snapshot with [`AppState::live`].
    live: RwLock<Arc<Live>>,
    /// Persistent state.
    pub store: Arc<dyn Store>,
    /// Signing keys and the serialized JWKS.
    pub keys: Arc<KeySet>,
    /// The upstream Discord client.
    pub discord: DiscordClient,
    /// Wakes the back-channel logout deliverer when work is queued.
    pub logout_wakeup: Arc<tokio::sync::Notify>,
    /// Outbound HTTP for back-channel logout (short timeout, no redirects).
    pub http: reqwest::Client,
    /// Time source.
    pub clock: Clock,
    /// One Discord membership re-check per person at a time in this process (the store's
    /// lease extends the rule across processes).
    pub rechecks: KeyedLocks,
    /// Access tokens whose signature was already checked (see [`crate::tokens::VerifiedTokens`]).
    pub verified: crate::tokens::VerifiedTokens,
    /// Seals and opens kept Discord tokens, built once from `[secrets]`.
    pub sealer: Option<crate::sealed::Keyring>,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The pages, branded by `[ui]`, and their Content-Security-Policy.
    pub pages: Arc<crate::pages::Pages>,
    /// Request-rate budgets (`[limits]`), kept across reloads.
    pub limiters: crate::limits::RequestLimiters,
    /// Set when the process is stopping: background jobs hand back work they claimed.
    pub stopping: StopFlag,
    /// Requests being served now (a stop waits for them).
    pub in_flight: InFlight,
    /// The optional bot's Gateway connection: state and counters (`/readyz` details).
    pub gateway: Arc<crate::discord::gateway::GatewayStatus>,
}

/// Counts requests being served, so a stop can wait until none is left.
#[derive(Debug, Default)]
pub struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One request being served; dropping it (the answer is ready, or the client went away)
/// ends it.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    /// Counts a request until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    /// How many requests are being served.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Returns once no request is being served.
    pub async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The part of the configuration a reload replaces, swapped as one piece so a request never
/// sees the clients of one file and the rules of another.
pub struct Live {
    /// The typed, validated configuration.
    pub config: Arc<ValidConfig>,
    /// Registered clients built from it.
    pub clients: Arc<Clients>,
    /// Origins of registered redirect URIs (CORS for browser apps).
    pub origins: HashSet<String>,
    /// The discovery document of this configuration, serialized.
    pub discovery: bytes::Bytes,
}

impl Live {
    /// The live part built from a validated configuration; `previous` lends its clients'
    /// failed-authentication budgets, so a reload does not reset them.
    pub fn new(config: ValidConfig, previous: Option<&Clients>) -> Self {
        let clients = Arc::new(Clients::new(&config.clients, previous));
        let origins = browser_origins(&config);
        let discovery = crate::discovery::document(&config);
        Self {
            config: Arc::new(config),
            clients,
            origins,
            discovery,
        }
    }
}

/// Origins of registered redirect URIs: browser apps there may call the token, userinfo,
/// revocation and introspection endpoints (a public client's token request is cross-origin).
/// Origins of `post_logout_redirect_uris` are not added: no app fetches from those pages.
fn browser_origins(config: &ValidConfig) -> HashSet<String> {
    config
        .clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter())
        .filter_map(|u| url::Url::parse(u.as_str()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .collect()
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

/// Tells background jobs the process is stopping.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicBool);

impl StopFlag {
    /// From now on, jobs finish what they hold and take nothing new.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the process is stopping.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything [`AppState::new`] needs besides the configuration.
pub struct Parts {
    /// Settings as written.
    pub settings: Arc<Settings>,
    /// Persistent state.
    pub store: Arc<dyn Store>,
    /// Signing keys.
    pub keys: Arc<KeySet>,
    /// The upstream Discord client.
    pub discord: DiscordClient,
    /// Outbound HTTP for back-channel logout.
    pub http: reqwest::Client,
    /// Time source.
    pub clock: Clock,
    /// Seals and opens kept Discord tokens.
    pub sealer: Option<crate::sealed::Keyring>,
    /// The pages, branded by `[ui]`.
    pub pages: Arc<crate::pages::Pages>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    /// The state from its parts and the validated configuration.
    pub fn new(parts: Parts, config: ValidConfig) -> Self {
        Self {
            settings: parts.settings,
            https: config.issuer.is_https(),
            live: RwLock::new(Arc::new(Live::new(config, None))),
            store: parts.store,
            keys: parts.keys,
            discord: parts.discord,
            logout_wakeup: Arc::new(tokio::sync::Notify::new()),
            http: parts.http,
            pages: parts.pages,
            metrics: parts.metrics,
            gateway: Arc::default(),
            clock: parts.clock,
            rechecks: KeyedLocks::default(),
            verified: crate::tokens::VerifiedTokens::default(),
            sealer: parts.sealer,
            limiters: crate::limits::RequestLimiters::default(),
            stopping: StopFlag::default(),
            in_flight: InFlight::default(),
        }
    }

    /// The configuration in force now: one consistent snapshot (hold it for a request).
    pub fn live(&self) -> Arc<Live> {
        // A poisoned lock only means a writer panicked mid-assignment of an `Arc`, which
        // cannot leave it half-written: the value inside is still whole.
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The validated configuration in force now.
    pub fn config(&self) -> Arc<ValidConfig> {
        self.live().config.clone()
    }

    /// The registered clients in force now.
    pub fn clients(&self) -> Arc<Clients> {
        self.live().clients.clone()
    }

    /// Puts a new configuration in force; requests already running keep the one they took.
    pub fn replace_live(&self, live: Live) {
        let live = Arc::new(live);
        match self.live.write() {
            Ok(mut slot) => *slot = live,
            Err(poisoned) => *poisoned.into_inner() = live,
        }
    }

    /// What the protocol flows may use of this state, with one snapshot of the configuration.
    pub fn context(&self) -> crate::flows::Context<'_> {
        let live = self.live();
        crate::flows::Context {
            config: live.config.clone(),
            store: self.store.as_ref(),
            keys: &self.keys,
            clients: live.clients.clone(),
            discord: &self.discord,
            clock: &self.clock,
            logout_wakeup: &self.logout_wakeup,
            rechecks: &self.rechecks,
            verified: &self.verified,
            sealer: self.sealer.as_ref(),
            metrics: &self.metrics,
            request: crate::audit::RequestInfo::NONE,
        }
    }

    /// The `sub` a client sees for a person (pairwise when the client asks for it).
    pub fn subject(
        &self,
        client: &crate::config::ValidClient,
        user_id: &crate::domain::DiscordId,
    ) -> String {
        crate::claims::subject(
            self.config().pairwise_key.as_ref(),
            client.id.as_str(),
            client.pairwise_subject,
            user_id.as_str(),
        )
    }
}
