//! The Discord upstream: an OAuth2 + REST client (rate-limit aware) and a faithful fake Discord.
//!
//! Facts were checked against Discord's developer documentation (discord/discord-api-docs):
//! `topics/oauth2` (URLs, form-only token endpoints, token response, revocation),
//! `resources/user` (user object, `/users/@me/guilds`, `/users/@me/guilds/{guild.id}/member`),
//! `resources/guild` (guild member object), `topics/rate-limits` (headers and 429 body),
//! `topics/opcodes-and-status-codes` (JSON error codes) and `reference` (image formatting).

mod answers;
pub mod api;
mod bot;
pub mod cache;
mod client;
mod credentials;
#[cfg(feature = "dev")]
pub mod fake;
pub mod gateway;
mod identity;
pub mod kept_tokens;
mod ratelimit;
pub mod roles;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use client::{DiscordClient, DiscordClientConfig, DiscordTokens};
pub use identity::{LinkedAccount, MemberProfile, Membership};

/// What can go wrong when talking to Discord.
///
/// [`DiscordError::is_temporary`] decides what our own clients see: a temporary failure becomes
/// OAuth2 `temporarily_unavailable`, anything else `server_error`.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// Discord answered 429 (or a bucket is exhausted) and the wait exceeds the retry budget.
    #[error("Discord rate limited the request; retry after {retry_after:?}")]
    RateLimited {
        /// How long Discord asked us to wait.
        retry_after: Duration,
    },
    /// Discord answered 5xx twice, or could not be reached.
    #[error("Discord is unavailable: {0}")]
    Unavailable(String),
    /// Discord did not answer within the configured timeout.
    #[error("Discord did not answer in time")]
    Timeout,
    /// Discord answered with a body we could not parse.
    #[error("Discord answered with a malformed body: {0}")]
    Malformed(String),
    /// The token endpoint said `invalid_grant`: the code or refresh token is invalid, expired,
    /// already used or revoked.
    #[error("Discord rejected the authorization grant (invalid_grant)")]
    InvalidGrant,
    /// A REST call answered 401: the access token is invalid, expired or revoked.
    #[error("Discord rejected the access token")]
    Unauthorized,
    /// Any other 4xx answer. Never retried (Discord bans IPs that keep sending bad requests).
    #[error("Discord refused the request (HTTP {status}, code {code:?}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Discord's JSON error code, when the body had one.
        code: Option<i64>,
        /// Discord's message or OAuth2 `error` (+ description); never contains secrets.
        message: String,
    },
    /// The client configuration cannot work (e.g. an API base URL that cannot take paths).
    #[error("invalid Discord client configuration: {0}")]
    Config(String),
}

impl DiscordError {
    /// True when retrying later may succeed: rate limits, outages and timeouts.
    /// The app answers these with `temporarily_unavailable`, everything else with `server_error`.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            DiscordError::RateLimited { .. } | DiscordError::Unavailable(_) | DiscordError::Timeout
        )
    }
}

/// The upstream routes the client calls; used to key statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiscordRoute {
    /// `POST /oauth2/token`.
    Token,
    /// `POST /oauth2/token/revoke`.
    Revoke,
    /// `GET /users/@me`.
    Me,
    /// `GET /users/@me/guilds`.
    Guilds,
    /// `GET /users/@me/guilds/{guild.id}/member`.
    Member,
    /// `GET /users/@me/connections`.
    Connections,
    /// `GET /guilds/{guild.id}/members/{user.id}` with the bot token.
    BotMember,
    /// `GET /guilds/{guild.id}/roles` with the bot token.
    BotRoles,
}

impl DiscordRoute {
    /// Every route, in a fixed order.
    pub const ALL: [DiscordRoute; 8] = [
        DiscordRoute::Token,
        DiscordRoute::Revoke,
        DiscordRoute::Me,
        DiscordRoute::Guilds,
        DiscordRoute::Member,
        DiscordRoute::Connections,
        DiscordRoute::BotMember,
        DiscordRoute::BotRoles,
    ];

    /// A short stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscordRoute::Token => "token",
            DiscordRoute::Revoke => "revoke",
            DiscordRoute::Me => "users_me",
            DiscordRoute::Guilds => "users_me_guilds",
            DiscordRoute::Member => "users_me_guild_member",
            DiscordRoute::Connections => "users_me_connections",
            DiscordRoute::BotMember => "guild_member_by_bot",
            DiscordRoute::BotRoles => "guild_roles_by_bot",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Atomic counters for one route.
#[derive(Debug, Default)]
struct RouteCounters {
    calls: AtomicU64,
    rate_limited: AtomicU64,
    latency_micros_total: AtomicU64,
    latency_micros_max: AtomicU64,
}

/// A point-in-time copy of one route's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// HTTP requests sent (retries count separately).
    pub calls: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Sum of request latencies.
    pub latency_total: Duration,
    /// Slowest request seen.
    pub latency_max: Duration,
}

/// Calls, 429s and latencies per upstream route, readable via [`DiscordClient::stats`], and the
/// same calls by status for the Prometheus scrape ([`DiscordStats::metrics`]).
#[derive(Debug)]
pub struct DiscordStats {
    routes: [RouteCounters; DiscordRoute::ALL.len()],
    metrics: crate::metrics::DiscordMetrics,
}

impl Default for DiscordStats {
    fn default() -> Self {
        let metrics = crate::metrics::DiscordMetrics::default();
        for route in DiscordRoute::ALL {
            metrics.declare_route(route.as_str());
        }
        Self {
            routes: Default::default(),
            metrics,
        }
    }
}

impl DiscordStats {
    /// A snapshot of the counters of `route`.
    pub fn route(&self, route: DiscordRoute) -> RouteStats {
        let c = &self.routes[route.index()];
        RouteStats {
            calls: c.calls.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            latency_total: Duration::from_micros(c.latency_micros_total.load(Ordering::Relaxed)),
            latency_max: Duration::from_micros(c.latency_micros_max.load(Ordering::Relaxed)),
        }
    }

    /// The Prometheus view of the calls, registered by [`crate::metrics::Metrics::new`].
    pub fn metrics(&self) -> &crate::metrics::DiscordMetrics {
        &self.metrics
    }

    /// One request sent; `status` is `None` when no answer came.
    pub(crate) fn record_call(&self, route: DiscordRoute, status: Option<u16>, latency: Duration) {
        self.metrics.record_call(route.as_str(), status, latency);
        let c = &self.routes[route.index()];
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.latency_micros_total.fetch_add(micros, Ordering::Relaxed);
        c.latency_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn record_rate_limited(&self, route: DiscordRoute) {
        self.metrics.record_rate_limited(route.as_str());
        self.routes[route.index()]
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The user's avatar URL on Discord's CDN, or their default avatar when they have none.
pub fn avatar_url(user: &api::User) -> String {
    crate::domain::avatar_url(&user.id, user.avatar.as_deref(), Some(&user.discriminator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, discriminator: &str, avatar: Option<&str>) -> api::User {
        serde_json::from_value(serde_json::json!({
            "id": id, "username": "u", "discriminator": discriminator,
            "global_name": null, "avatar": avatar,
        }))
        .expect("valid user")
    }

    #[test]
    fn avatar_url_uses_png_for_static_and_gif_for_animated_hashes() {
        let u = user(
            "80351110224678912",
            "0",
            Some("8342729096ea3675442027381ff50dfe"),
        );
        assert_eq!(
            avatar_url(&u),
            "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
        );
        let u = user(
            "80351110224678912",
            "0",
            Some("a_1269e74af4df7417b13759eae50c83dc"),
        );
        assert!(avatar_url(&u).ends_with("/a_1269e74af4df7417b13759eae50c83dc.gif"));
    }

    #[test]
    fn default_avatar_index_follows_the_username_system() {
        // Migrated user: (id >> 22) % 6.
        let id: u64 = 175928847299117063;
        let u = user(&id.to_string(), "0", None);
        let expected = (id >> 22) % 6;
        assert_eq!(
            avatar_url(&u),
            format!("https://cdn.discordapp.com/embed/avatars/{expected}.png")
        );
        // Legacy user: Test#1337 -> 1337 % 5 == 2 (the docs' own example).
        let u = user("80351110224678912", "1337", None);
        assert_eq!(
            avatar_url(&u),
            "https://cdn.discordapp.com/embed/avatars/2.png"
        );
    }

    #[test]
    fn only_outages_rate_limits_and_timeouts_are_temporary() {
        assert!(DiscordError::Timeout.is_temporary());
        assert!(DiscordError::Unavailable("x".into()).is_temporary());
        assert!(
            DiscordError::RateLimited {
                retry_after: Duration::from_secs(1)
            }
            .is_temporary()
        );
        assert!(!DiscordError::InvalidGrant.is_temporary());
        assert!(!DiscordError::Malformed("x".into()).is_temporary());
        assert!(!DiscordError::Unauthorized.is_temporary());
    }
}
