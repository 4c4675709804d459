//! Prometheus metrics (`prometheus-client`): what guildgate counts, and the scrape document.
//!
//! Every label value is a `&'static str` or a small number chosen from a closed set (the
//! mounted path, never the raw one; the OAuth2 error code; the unmet rule), so the number of
//! series stays bounded whatever clients send, and recording on the hot paths is an atomic
//! add after one hash lookup, without allocating. Values that live in the store or the key
//! folder (queue depth, live sessions, pool, key age) are read at scrape time
//! (`routes/metrics.rs`) and set on their gauges here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

mod labels;
pub use labels::{Delivery, SignIn, Status};
use labels::{
    DiscordLabels, GrantLabels, HttpLabels, KindLabel, OutcomeLabel, RouteLabel, SignInLabels,
    StateLabel,
};

/// The content type of the scrape document (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, 1 ms to 10 s: token and userinfo answers take milliseconds,
/// sign-ins wait on Discord for hundreds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// A histogram family whose constructor is a plain function (so the type can be named).
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Discord call metrics, kept by the Discord client's transport and registered with the rest.
#[derive(Clone, Debug)]
pub struct DiscordMetrics {
    requests: Family<DiscordLabels, Counter>,
    duration: Histograms<RouteLabel>,
    rate_limited: Family<RouteLabel, Counter>,
}

impl Default for DiscordMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            rate_limited: Family::default(),
        }
    }
}

impl DiscordMetrics {
    /// One HTTP request to Discord (each retry counts), its status and how long it took.
    pub fn record_call(&self, route: &'static str, status: Option<u16>, latency: Duration) {
        self.requests
            .get_or_create(&DiscordLabels {
                route,
                status: Status(status),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabel { route })
            .observe(latency.as_secs_f64());
    }

    /// Creates the route's 429 counter at zero, so dashboards see the series before the first
    /// 429 (a `rate()` over an absent series shows nothing, not 0).
    pub fn declare_route(&self, route: &'static str) {
        drop(self.rate_limited.get_or_create(&RouteLabel { route }));
    }

    /// One 429 answer.
    pub fn record_rate_limited(&self, route: &'static str) {
        self.rate_limited.get_or_create(&RouteLabel { route }).inc();
    }
}

/// Every metric guildgate exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabel>,
    signins: Family<SignInLabels, Counter>,
    grants: Family<GrantLabels, Counter>,
    refresh_reuse: Counter,
    revocations: Family<KindLabel, Counter>,
    backchannel: Family<OutcomeLabel, Counter>,
    backchannel_queue: Gauge,
    sessions: Gauge,
    pool: Family<StateLabel, Gauge>,
    key_age: Gauge,
    live_state: Family<StateLabel, Gauge>,
    live_events: Family<TypeLabel, Counter>,
    live_deprovisionings: Counter,
    live_reconnects: Counter,
    devices: Family<OutcomeLabel, Counter>,
    pushed: Counter,
    dpop: Family<OutcomeLabel, Counter>,
}

/// A Gateway event type (`member_remove`, `ban_add`, `member_update`, `role`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric, the Discord client's included.
    pub fn new(discord: &DiscordMetrics) -> Self {
        let mut registry = Registry::with_prefix("guildgate");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by mounted route and status",
            http_requests.clone(),
        );
        let http_duration: Histograms<RouteLabel> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by mounted route",
            Unit::Seconds,
            http_duration.clone(),
        );
        let signins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "signins",
            "Sign-ins into an app by outcome (ok, denied with the unmet rule, upstream_error, cancelled, invalid)",
            signins.clone(),
        );
        let grants = Family::<GrantLabels, Counter>::default();
        registry.register(
            "token_grants",
            "Token endpoint requests by grant type and outcome (ok or the OAuth2 error code)",
            grants.clone(),
        );
        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_token_reuse",
            "Rotated refresh tokens presented again (each revoked its grant)",
            refresh_reuse.clone(),
        );
        let revocations = Family::<KindLabel, Counter>::default();
        registry.register(
            "revocations",
            "Tokens revoked by their client (RFC 7009), by kind",
            revocations.clone(),
        );
        let backchannel = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "backchannel_logout_deliveries",
            "Back-channel logout attempts by outcome (delivered, retry, abandoned)",
            backchannel.clone(),
        );
        let backchannel_queue = Gauge::default();
        registry.register(
            "backchannel_logout_queue",
            "Back-channel logouts queued and not yet delivered (read at scrape)",
            backchannel_queue.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions_live",
            "Live single sign-on sessions (read at scrape)",
            sessions.clone(),
        );
        let pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "store_pool_connections",
            "Database connections open in this process's pool, by state (idle, in_use)",
            pool.clone(),
        );
        let key_age = Gauge::default();
        registry.register_with_unit(
            "signing_key_age",
            "Time since the signing key in use became active",
            Unit::Seconds,
            key_age.clone(),
        );
        let live_state = Family::<StateLabel, Gauge>::default();
        registry.register(
            "live_membership_connection",
            "The optional bot's Gateway connection: 1 for its current state (standby, connecting, connected, disconnected, refused); nothing without a bot",
            live_state.clone(),
        );
        let live_events = Family::<TypeLabel, Counter>::default();
        registry.register(
            "live_membership_events",
            "Gateway member events received by this process, by type",
            live_events.clone(),
        );
        let live_deprovisionings = Counter::default();
        registry.register(
            "live_membership_deprovisionings",
            "Gateway events that ended a person's grants or session",
            live_deprovisionings.clone(),
        );
        let live_reconnects = Counter::default();
        registry.register(
            "live_membership_reconnects",
            "Gateway connections lost and made again",
            live_reconnects.clone(),
        );
        let devices = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "device_authorizations",
            "Device sign-ins (RFC 8628) by outcome (requested, approved, denied)",
            devices.clone(),
        );
        let pushed = Counter::default();
        registry.register(
            "pushed_authorization_requests",
            "Authorization requests pushed to /par (RFC 9126)",
            pushed.clone(),
        );
        let dpop = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "dpop_proofs",
            "DPoP proofs checked (RFC 9449) by outcome (ok, invalid, replayed, nonce)",
            dpop.clone(),
        );
        registry.register(
            "discord_requests",
            "HTTP requests to Discord by route and status (none: no answer)",
            discord.requests.clone(),
        );
        registry.register_with_unit(
            "discord_request_duration",
            "Time Discord took to answer, by route",
            Unit::Seconds,
            discord.duration.clone(),
        );
        registry.register(
            "discord_rate_limited",
            "429 answers from Discord, by route",
            discord.rate_limited.clone(),
        );
        // The closed label sets start at zero: a series that exists before its first event
        // makes `rate()` and `increase()` show 0 rather than nothing.
        for outcome in ["ok", "upstream_error", "cancelled", "invalid"] {
            drop(signins.get_or_create(&SignInLabels { outcome, rule: "" }));
        }
        for grant_type in [
            "authorization_code",
            "refresh_token",
            "device_code",
            "client_credentials",
        ] {
            drop(grants.get_or_create(&GrantLabels {
                grant_type,
                outcome: "ok",
            }));
        }
        for kind in ["refresh_token", "access_token"] {
            drop(revocations.get_or_create(&KindLabel { kind }));
        }
        for outcome in ["delivered", "retry", "abandoned"] {
            drop(backchannel.get_or_create(&OutcomeLabel { outcome }));
        }
        for outcome in ["requested", "approved", "denied"] {
            drop(devices.get_or_create(&OutcomeLabel { outcome }));
        }
        for outcome in ["ok", "invalid", "replayed", "nonce"] {
            drop(dpop.get_or_create(&OutcomeLabel { outcome }));
        }
        Self {
            registry,
            http_requests,
            http_duration,
            signins,
            grants,
            refresh_reuse,
            revocations,
            backchannel,
            backchannel_queue,
            sessions,
            pool,
            key_age,
            live_state,
            live_events,
            live_deprovisionings,
            live_reconnects,
            devices,
            pushed,
            dpop,
        }
    }

    /// A device sign-in was requested, approved or denied.
    pub fn device_authorization(&self, outcome: &'static str) {
        self.devices.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// An authorization request was pushed.
    pub fn pushed_request(&self) {
        self.pushed.inc();
    }

    /// A DPoP proof was checked: `ok`, `invalid`, `replayed` or `nonce` (a fresh nonce asked).
    pub fn dpop_proof(&self, outcome: &'static str) {
        self.dpop.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// One answered HTTP request (`route` is the mounted path or a fixed stand-in).
    pub fn http_request(&self, route: &'static str, status: u16, latency: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                status: Status(Some(status)),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel { route })
            .observe(latency.as_secs_f64());
    }

    /// How a sign-in ended.
    pub fn sign_in(&self, outcome: SignIn) {
        let (outcome, rule) = match outcome {
            SignIn::Ok => ("ok", ""),
            SignIn::Denied(rule) => ("denied", rule),
            SignIn::UpstreamError => ("upstream_error", ""),
            SignIn::Cancelled => ("cancelled", ""),
            SignIn::Invalid => ("invalid", ""),
        };
        self.signins
            .get_or_create(&SignInLabels { outcome, rule })
            .inc();
    }

    /// One token request: its grant type and `ok` or the OAuth2 error code.
    pub fn token_grant(&self, grant_type: &'static str, outcome: &'static str) {
        self.grants
            .get_or_create(&GrantLabels {
                grant_type,
                outcome,
            })
            .inc();
    }

    /// A rotated refresh token was presented again.
    pub fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    /// A client revoked a token of this kind (`refresh_token`, `access_token`).
    pub fn revocation(&self, kind: &'static str) {
        self.revocations.get_or_create(&KindLabel { kind }).inc();
    }

    /// One back-channel logout attempt.
    pub fn backchannel(&self, outcome: Delivery) {
        let outcome = match outcome {
            Delivery::Delivered => "delivered",
            Delivery::Retry => "retry",
            Delivery::Abandoned => "abandoned",
        };
        self.backchannel
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The values read at scrape time.
    pub fn set_scraped(&self, scraped: &Scraped) {
        if let Some(depth) = scraped.backchannel_queue {
            self.backchannel_queue.set(saturate(depth));
        }
        if let Some(live) = scraped.sessions_live {
            self.sessions.set(saturate(live));
        }
        let in_use = scraped.pool_size.saturating_sub(scraped.pool_idle);
        self.pool
            .get_or_create(&StateLabel { state: "idle" })
            .set(saturate(scraped.pool_idle));
        self.pool
            .get_or_create(&StateLabel { state: "in_use" })
            .set(saturate(in_use));
        self.key_age.set(scraped.signing_key_age_secs);
    }

    /// Mirrors the live-membership connection's status (read at scrape; only with a bot).
    pub fn set_live(&self, status: &crate::discord::gateway::StatusSnapshot) {
        use crate::discord::gateway::ConnectionState;
        for state in ConnectionState::ALL {
            self.live_state
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::from(status.state == state));
        }
        // The status keeps totals; the counters catch up to them.
        let catch_up = |counter: &Counter, total: u64| {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        };
        for (r#type, total) in [
            ("member_remove", status.member_remove_events),
            ("ban_add", status.ban_add_events),
            ("member_update", status.member_update_events),
            ("role", status.role_events),
        ] {
            catch_up(
                &self.live_events.get_or_create(&TypeLabel { r#type }),
                total,
            );
        }
        catch_up(&self.live_deprovisionings, status.deprovisionings);
        catch_up(&self.live_reconnects, status.reconnects);
    }

    /// The scrape document (OpenMetrics text).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// What the scrape reads from the store and keys; `None` where the store did not answer (the
/// gauge keeps its last value).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scraped {
    /// Queued back-channel logouts.
    pub backchannel_queue: Option<u64>,
    /// Live sessions.
    pub sessions_live: Option<u64>,
    /// Connections open in the pool.
    pub pool_size: u64,
    /// Of those, idle.
    pub pool_idle: u64,
    /// Seconds since the active signing key became active.
    pub signing_key_age_secs: i64,
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_names_every_metric_with_the_prefix_and_bounded_labels() {
        let discord = DiscordMetrics::default();
        let metrics = Metrics::new(&discord);
        metrics.http_request("/token", 200, Duration::from_millis(3));
        metrics.sign_in(SignIn::Denied("allowed_guilds"));
        discord.record_call("token", None, Duration::from_millis(5));
        let text = metrics.encode().expect("encodes");
        assert!(text.contains(r#"guildgate_http_requests_total{route="/token",status="200"} 1"#));
        assert!(
            text.contains(r#"guildgate_signins_total{outcome="denied",rule="allowed_guilds"} 1"#)
        );
        assert!(
            text.contains(r#"guildgate_discord_requests_total{route="token",status="none"} 1"#)
        );
        assert!(text.contains("guildgate_http_request_duration_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
    }
}
