//! A fake Discord (OAuth2 + the REST routes we use) on 127.0.0.1, for integration tests and `dev`.
//!
//! It checks what Discord checks (client, exact redirect URI, single-use expiring codes bound to
//! client + redirect URI + PKCE, scopes per route, bearer expiry and revocation), answers in
//! Discord's shapes, sends rate-limit headers on every API answer, and can be told to misbehave
//! ([`Fault`]) or to change a user's memberships while a session is alive.

mod bot;
mod community;
mod data;
mod faults;
mod gateway;
mod oauth;
mod pages;
mod rest;
mod state;
mod token;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod membership_tests;
#[cfg(test)]
mod tests;

pub use data::{
    FakeConnection, FakeData, FakeDataError, FakeGuild, FakeMembership, FakeRole, FakeUser,
};
pub use gateway::GatewayCounts;

use actix_web::{App, HttpResponse, HttpServer, dev::ServerHandle, web};
use state::State;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use url::Url;

/// The issuer Discord puts in `iss` on authorization responses (RFC 9207); Discord's
/// `/.well-known/oauth-authorization-server` lists it with `authorization_response_iss_parameter_supported`,
/// `code_challenge_methods_supported: ["S256"]` and `client_secret_basic`/`client_secret_post`.
pub const DISCORD_ISSUER: &str = "https://discord.com";

/// A route of the fake, for fault injection and call counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FakeRoute {
    /// `GET /oauth2/authorize`.
    Authorize,
    /// `POST /api/v10/oauth2/token`.
    Token,
    /// `POST /api/v10/oauth2/token/revoke`.
    Revoke,
    /// `GET /api/v10/users/@me`.
    Me,
    /// `GET /api/v10/users/@me/guilds`.
    Guilds,
    /// `GET /api/v10/users/@me/guilds/{guild_id}/member`.
    Member,
    /// `GET /api/v10/users/@me/connections`.
    Connections,
    /// `GET /api/v10/guilds/{guild_id}/members/{user_id}` (bot token).
    BotMember,
    /// `GET /api/v10/guilds/{guild_id}/roles` (bot token).
    BotRoles,
}

/// Misbehaviour to inject on a route. Each applies to the next `times` calls, then clears itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer 429 in Discord's shape with this `retry_after` (seconds).
    RateLimited {
        /// Seconds to ask the client to wait.
        retry_after: f64,
        /// How many calls get it.
        times: u32,
    },
    /// Answer 500.
    ServerError {
        /// How many calls get it.
        times: u32,
    },
    /// Wait `delay` before answering normally.
    Slow {
        /// Added latency.
        delay: Duration,
        /// How many calls get it.
        times: u32,
    },
    /// Answer 200 with a truncated JSON body.
    MalformedJson {
        /// How many calls get it.
        times: u32,
    },
    /// Put another issuer than `https://discord.com` in `iss` on authorization responses,
    /// until [`FakeDiscordHandle::clear_faults`].
    WrongIssuer,
    /// Answer 200 with `json` followed by `padding` bytes of whitespace (still valid JSON),
    /// streamed in chunks without a `Content-Length`: only a client that counts while reading
    /// stops early; one that reads it whole finds a usable answer.
    OversizedBody {
        /// The answer itself.
        json: serde_json::Value,
        /// Whitespace after it.
        padding: usize,
        /// How many calls get it.
        times: u32,
    },
}

/// Starts fake Discord servers.
pub struct FakeDiscord;

impl FakeDiscord {
    /// Binds 127.0.0.1 on a free port and spawns the server on the current tokio runtime (a
    /// `#[tokio::test]` or actix's). Fails when called outside a runtime.
    pub fn start(data: FakeData) -> std::io::Result<FakeDiscordHandle> {
        Self::start_on(data, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Like [`FakeDiscord::start`], on a chosen address (e.g. a fixed port for `guildgate dev`).
    pub fn start_on(
        data: FakeData,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<FakeDiscordHandle> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "FakeDiscord::start needs a tokio runtime",
            ));
        }
        let listener = std::net::TcpListener::bind(addr)?;
        let base_url = Url::parse(&format!("http://{}", listener.local_addr()?))
            .map_err(std::io::Error::other)?;
        let gateway = gateway::FakeGateway::start(data.bot_token.clone())?;
        let shared = Arc::new(Mutex::new(State::new(data)));
        let app_state = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .configure(routes)
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        let server_handle = server.handle();
        tokio::spawn(server);
        Ok(FakeDiscordHandle {
            inner: Arc::new(HandleInner {
                base_url,
                shared,
                server: server_handle,
                gateway,
            }),
        })
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/authorize", web::get().to(oauth::authorize))
        .route("/oauth2/authorize/approve", web::get().to(oauth::approve))
        .route("/oauth2/authorize/cancel", web::get().to(oauth::cancel))
        // Versioned (what our client uses) and unversioned, like Discord's own token URL.
        .service(web::scope("/api/v10").configure(api_routes))
        .service(web::scope("/api").configure(api_routes));
}

fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/token", web::post().to(token::token))
        .route("/oauth2/token/revoke", web::post().to(token::revoke))
        .route("/users/@me", web::get().to(rest::me))
        .route("/users/@me/guilds", web::get().to(rest::guilds))
        .route("/users/@me/connections", web::get().to(rest::connections))
        .route(
            "/users/@me/guilds/{guild_id}/member",
            web::get().to(rest::member),
        )
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            web::get().to(bot::guild_member),
        )
        .route("/guilds/{guild_id}/roles", web::get().to(bot::guild_roles));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"message": "404: Not Found", "code": 0}))
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake Discord. Clones share the server, which stops when the last clone drops.
#[derive(Clone)]
pub struct FakeDiscordHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    base_url: Url,
    shared: Arc<Mutex<State>>,
    server: ServerHandle,
    gateway: gateway::FakeGateway,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        // The stop command is sent right away; awaiting the returned future is optional.
        drop(self.server.stop(false));
    }
}

impl std::fmt::Debug for FakeDiscordHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscordHandle")
            .field("base_url", &self.inner.base_url.as_str())
            .finish()
    }
}

impl FakeDiscordHandle {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.shared)
    }

    fn join(&self, path: &str) -> Url {
        let mut url = self.inner.base_url.clone();
        url.set_path(path);
        url
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> Url {
        self.inner.base_url.clone()
    }

    /// `{base}/oauth2/authorize`.
    pub fn authorize_url(&self) -> Url {
        self.join("/oauth2/authorize")
    }

    /// `{base}/api/v10`.
    pub fn api_base_url(&self) -> Url {
        self.join("/api/v10")
    }

    /// The registered application's client id.
    pub fn client_id(&self) -> String {
        self.state().data.client_id.clone()
    }

    /// The registered application's client secret.
    pub fn client_secret(&self) -> String {
        self.state().data.client_secret.clone()
    }

    /// With `Some(user_id)`, `/oauth2/authorize` redirects straight back with a code for that user
    /// (a signed-in user who already authorized the app; `prompt=consent` still shows the page).
    /// With `None`, the user picker is shown.
    pub fn sign_in_as(&self, user_id: Option<&str>) {
        self.state().signed_in = user_id.map(str::to_owned);
    }

    /// Injects `fault` on `route`, replacing any fault already there.
    pub fn inject(&self, route: FakeRoute, fault: Fault) {
        self.state().faults.insert(route, fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// How many requests `route` has received.
    pub fn calls(&self, route: FakeRoute) -> u32 {
        self.state().calls.get(&route).copied().unwrap_or(0)
    }

    /// How many refresh-token grants the token endpoint has received (accepted or refused).
    pub fn refresh_token_uses(&self) -> u32 {
        self.state().refresh_uses
    }

    /// The user removes the app in Discord's settings: every token of every authorization of
    /// theirs stops working.
    pub fn deauthorize(&self, user_id: &str) {
        self.state().deauthorize(user_id);
    }

    /// Sets the user's roles in a guild, making them a member if they were not. Returns false
    /// when the user or guild is unknown.
    pub fn set_member_roles(&self, user_id: &str, guild_id: &str, roles: &[&str]) -> bool {
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self.state().data.set_member_roles(user_id, guild_id, roles)
    }

    /// Replaces the user's linked accounts. Returns false when the user is unknown.
    pub fn set_connections(&self, user_id: &str, connections: Vec<FakeConnection>) -> bool {
        self.state().data.set_connections(user_id, connections)
    }

    /// Removes the user from a guild. Returns whether they were a member.
    pub fn remove_from_guild(&self, user_id: &str, guild_id: &str) -> bool {
        self.state().data.remove_from_guild(user_id, guild_id)
    }

    /// Every token revoked so far (directly or with its authorization).
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.state().revoked.iter().cloned().collect()
    }

    /// Whether `token` (access or refresh) has been revoked.
    pub fn is_revoked(&self, token: &str) -> bool {
        self.state().revoked.contains(token)
    }

    /// Lifetime of authorization codes (default 100 s; Discord's codes are short-lived).
    pub fn set_code_ttl(&self, ttl: Duration) {
        self.state().code_ttl = ttl;
    }

    /// Lifetime of access tokens (default 604800 s, as in Discord's token response example).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.state().access_ttl = ttl;
    }

    /// The per-token rate limit of `route`: `limit` requests per `window` (default 50 per second).
    /// Beyond it the fake answers 429 with `X-RateLimit-Scope: user`.
    pub fn set_rate_limit(&self, route: FakeRoute, limit: u32, window: Duration) {
        self.state().limits.insert(route, (limit.max(1), window));
    }

    /// The fake Gateway's URL (`ws://127.0.0.1:{port}`), for `discord.bot.gateway_url`.
    pub fn gateway_url(&self) -> String {
        self.inner.gateway.url()
    }

    /// The application's bot token.
    pub fn bot_token(&self) -> String {
        self.state().data.bot_token.clone()
    }

    /// The developer resets the application's client secret in the Developer Portal: from now
    /// on only `secret` authenticates the application at the token endpoints.
    pub fn reset_client_secret(&self, secret: &str) {
        self.state().data.client_secret = secret.to_owned();
    }

    /// The developer resets the bot token: from now on only `token` is accepted, by REST and by
    /// the Gateway, whose connections are dropped (an identify with the old token is refused).
    pub fn reset_bot_token(&self, token: &str) {
        self.state().data.bot_token = token.to_owned();
        self.inner.gateway.set_bot_token(token.to_owned());
    }

    /// Gateway connections, identifies, resumes and refusals so far.
    pub fn gateway_counts(&self) -> GatewayCounts {
        self.inner.gateway.counts()
    }

    /// The heartbeat interval the Gateway announces (default 41.25 s, as Discord).
    pub fn set_gateway_heartbeat(&self, interval: Duration) {
        self.inner.gateway.set_heartbeat_interval(interval);
    }

    /// A moderator kicks the user: they leave the guild and the Gateway dispatches
    /// `GUILD_MEMBER_REMOVE`. Returns whether they were a member.
    pub fn kick(&self, user_id: &str, guild_id: &str) -> bool {
        let user = self.user_payload(user_id);
        let removed = self.remove_from_guild(user_id, guild_id);
        if let (true, Some(user)) = (removed, user) {
            let data = serde_json::json!({"guild_id": guild_id, "user": user});
            self.inner.gateway.dispatch("GUILD_MEMBER_REMOVE", data);
        }
        removed
    }

    /// A moderator bans the user: as Discord does, `GUILD_BAN_ADD` then `GUILD_MEMBER_REMOVE`.
    /// Returns whether they were a member.
    pub fn ban(&self, user_id: &str, guild_id: &str) -> bool {
        let Some(user) = self.user_payload(user_id) else {
            return false;
        };
        let removed = self.remove_from_guild(user_id, guild_id);
        let data = serde_json::json!({"guild_id": guild_id, "user": user});
        self.inner.gateway.dispatch("GUILD_BAN_ADD", data.clone());
        if removed {
            self.inner.gateway.dispatch("GUILD_MEMBER_REMOVE", data);
        }
        removed
    }

    /// Sets the member's roles and dispatches `GUILD_MEMBER_UPDATE` with the full member.
    /// Returns false when the user or guild is unknown.
    pub fn update_roles(&self, user_id: &str, guild_id: &str, roles: &[&str]) -> bool {
        self.set_member_roles(user_id, guild_id, roles)
            && self.dispatch_member_update(user_id, guild_id)
    }

    /// Opcode 7 to every Gateway client: reconnect and resume.
    pub fn gateway_reconnect(&self) {
        self.inner.gateway.control(gateway::Control::Reconnect);
    }

    /// Opcode 9 to every Gateway client; not `resumable` also forgets every session.
    pub fn gateway_invalidate_session(&self, resumable: bool) {
        self.inner
            .gateway
            .control(gateway::Control::InvalidSession(resumable));
    }

    /// Drops every Gateway connection without a close frame (a network failure).
    pub fn gateway_drop_connections(&self) {
        self.inner.gateway.control(gateway::Control::Drop);
    }

    fn user_payload(&self, user_id: &str) -> Option<serde_json::Value> {
        self.state()
            .data
            .user(user_id)
            .map(|u| rest::user_json(u, false))
    }

    /// A copy of the current data (memberships included).
    pub fn data(&self) -> FakeData {
        self.state().data.clone()
    }
}
