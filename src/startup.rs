//! Application::build: validates settings, connects the store, loads keys, binds, mounts routes.

use crate::clients::Clients;
use crate::config::Settings;
use crate::discord::{DiscordClient, DiscordClientConfig};
use crate::keyed_lock::KeyedLocks;
use crate::keys::KeySet;
use crate::routes;
use crate::state::{AppState, Clock};
use crate::store;
use crate::telemetry::RequestSpan;
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;

/// The longest a request waits on Discord's rate limits before answering
/// `temporarily_unavailable`: a person at a browser will not wait longer.
const MAX_DISCORD_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

mod error;

use error::LISTEN_SETTING;
pub use error::{StartupError, format_problems};

/// A built, bound, not yet running guildgate.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Background tasks are started with the server and stopped with it.
struct Jobs(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Jobs {
    fn drop(&mut self) {
        for job in &self.0 {
            job.abort();
        }
    }
}

impl Application {
    /// Builds everything; the listener is bound before this returns (port 0 picks a free one).
    pub async fn build(settings: Settings, clock: Clock) -> Result<Self, StartupError> {
        Self::build_with_listener(settings, clock, None).await
    }

    /// As [`Application::build`], serving on an already bound listener when one is given
    /// (tests bind port 0 first so the issuer can name the port).
    pub async fn build_with_listener(
        settings: Settings,
        clock: Clock,
        listener: Option<TcpListener>,
    ) -> Result<Self, StartupError> {
        let config = validated(&settings)?;
        let wait = connect_timeout(&settings)?;
        // Bind before waiting for the database: a taken port is reported at once, and probes
        // get answers (alive, not ready) while the database comes up.
        let bind_error = |cause| StartupError::Bind {
            addr: config.listen.to_string(),
            setting: LISTEN_SETTING,
            cause,
        };
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(config.listen).map_err(bind_error)?,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();
        let waiting = WaitingServer::start(&listener).map_err(bind_error)?;
        let state = assemble_state(settings, config, clock, wait).await;
        waiting.stop().await;
        let state = web::Data::new(state?);
        check_bot_token(&state).await?;

        let server_state = state.clone();
        let origins = Arc::new(browser_origins(&state.config));
        let server = HttpServer::new(move || {
            // actix runs the last `wrap` first, so a request meets the request span (redacted
            // target), then the security headers (added to every answer from below), then CORS
            // (answers preflights), then the edge checks (methods, HEAD, UTF-8, sizes), then
            // routing.
            App::new()
                .wrap(actix_web::middleware::from_fn(routes::edge_checks))
                .wrap(cors(origins.clone()))
                .wrap(actix_web::middleware::from_fn(routes::security_headers))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(server_state.clone())
                .configure(routes::configure)
        })
        .listen(listener)
        .map_err(|cause| StartupError::Bind {
            addr: format!("port {port}"),
            setting: LISTEN_SETTING,
            cause,
        })?
        .run();
        tracing::info!(port, issuer = %state.config.issuer, "guildgate is listening");
        Ok(Self {
            port,
            server,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests reach the store and clock through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM are handled by actix), with
    /// the background jobs running alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut jobs = crate::jobs::spawn(self.state.clone());
        jobs.extend(crate::live::spawn(self.state.clone()));
        let _jobs = Jobs(jobs);
        self.server.await
    }
}

/// Origins of registered redirect URIs: browser apps there may call the token, userinfo,
/// revocation and introspection endpoints (a public client's token request is cross-origin).
/// Origins of `post_logout_redirect_uris` are not added: no app fetches from those pages.
fn browser_origins(config: &crate::config::ValidConfig) -> std::collections::HashSet<String> {
    config
        .clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter())
        .filter_map(|u| url::Url::parse(u.as_str()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .collect()
}

/// CORS for registered app origins, and only on the endpoints a browser app calls with fetch
/// (`CrossOrigin::RegisteredOrigins` in the endpoint table: token, userinfo, revocation,
/// introspection). `/authorize`, `/logout`, `/consent` and `/callback/discord` are navigations:
/// a cross-origin read of them would only help an attacker. Discovery and JWKS are public and
/// answer any origin with `*` themselves. Credentials (cookies) are never allowed cross-origin.
fn cors(origins: Arc<std::collections::HashSet<String>>) -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, head| {
            routes::endpoint_at(head.uri.path())
                .is_some_and(|e| e.cross_origin == routes::CrossOrigin::RegisteredOrigins)
                && origin.to_str().is_ok_and(|o| origins.contains(o))
        })
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(3600)
        // Other origins simply get no CORS headers: form posts from our own pages and
        // navigations carry an Origin too and must not be refused.
        .block_on_origin_mismatch(false)
}

/// Answers `/healthz` (alive) and `/readyz` (503, starting) on the real listener while start-up
/// waits for the database, so orchestrators neither restart nor route to a process that is
/// only waiting. Stopped, without keep-alive connections to drain, before the app takes over.
struct WaitingServer {
    handle: actix_web::dev::ServerHandle,
}

impl WaitingServer {
    fn start(listener: &TcpListener) -> std::io::Result<Self> {
        let server = HttpServer::new(|| App::new().configure(routes::configure_starting))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .keep_alive(actix_web::http::KeepAlive::Disabled)
            .listen(listener.try_clone()?)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { handle })
    }

    /// Returns once it no longer accepts; the listener stays open (the app's copy), so
    /// connections arriving meanwhile wait in its backlog for the app.
    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A start-up abandoned half way (an error, a cancelled task) must not leave it serving.
impl Drop for WaitingServer {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only reports completion.
        drop(self.handle.stop(false));
    }
}

/// Validates, logging each warning once.
fn validated(settings: &Settings) -> Result<crate::config::ValidConfig, StartupError> {
    let config = settings.validate().map_err(StartupError::Config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// `database.connect_timeout` (already checked by `validate`).
fn connect_timeout(settings: &Settings) -> Result<std::time::Duration, StartupError> {
    settings
        .database
        .connect_timeout()
        .map_err(|problem| StartupError::Config(vec![problem]))
}

/// Everything but the listener: validated config, connected and migrated store, keys, clients,
/// the Discord client. The CLI's admin commands use it without serving; they try the database
/// once rather than waiting for it.
pub async fn build_state(settings: Settings, clock: Clock) -> Result<AppState, StartupError> {
    let config = validated(&settings)?;
    assemble_state(settings, config, clock, std::time::Duration::ZERO).await
}

/// The state from validated settings, waiting up to `wait` for the database.
async fn assemble_state(
    settings: Settings,
    config: crate::config::ValidConfig,
    clock: Clock,
    wait: std::time::Duration,
) -> Result<AppState, StartupError> {
    let url = settings.database.url.expose_secret();
    let store = store::connect_waiting(url, settings.database.max_connections, wait).await?;
    store.migrate().await?;
    let keys = KeySet::load_or_generate(&settings.keys.dir, clock.now())?;
    tracing::info!(kid = %keys.active().kid, "signing key loaded");
    let discovery = routes::build_metadata(&config)?;
    let clients = Arc::new(Clients::new(&config.clients));
    // Built once: a key the crypto library refuses stops start-up rather than silently
    // keeping no Discord tokens (re-checks would then sign everyone out).
    let sealer = config
        .encryption_key
        .as_ref()
        .map(crate::sealed::Sealer::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("secrets.encryption_key cannot be used: {e}"))?;
    let discord = DiscordClient::new(DiscordClientConfig {
        client_id: settings.discord.client_id.clone(),
        client_secret: settings.discord.client_secret.clone(),
        authorize_url: config.discord_authorize_url.clone(),
        api_base_url: config.discord_api_base_url.clone(),
        scopes: settings.discord.scopes.clone(),
        redirect_uri: config.issuer.endpoint("/callback/discord"),
        timeout: config.lifetimes.discord_timeout,
        max_retry_wait: MAX_DISCORD_RETRY_WAIT,
        membership_ttl: config.lifetimes.membership,
        bot_token: config.bot.as_ref().map(|b| b.token.clone()),
    })
    .map_err(|e| anyhow::anyhow!("cannot set up the Discord client: {e}"))?;

    Ok(AppState {
        settings: Arc::new(settings),
        config: Arc::new(config),
        store,
        keys: Arc::new(keys),
        clients,
        discord,
        logout_wakeup: Arc::new(tokio::sync::Notify::new()),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?,
        discovery,
        clock,
        rechecks: KeyedLocks::default(),
        verified: crate::tokens::VerifiedTokens::default(),
        sealer,
        live: Arc::default(),
    })
}

/// With a bot configured, asks Discord whether it accepts the token: a refused token stops
/// start-up (nothing the bot should do could work); Discord being unreachable does not (the
/// Gateway connection retries, and sign-ins never depend on it).
async fn check_bot_token(state: &AppState) -> Result<(), StartupError> {
    if state.config.bot.is_none() {
        return Ok(());
    }
    match state.discord.check_bot_token().await {
        Ok(bot) => {
            tracing::info!(bot_user = %bot.id, "Discord accepts the bot token");
            Ok(())
        }
        Err(crate::discord::DiscordError::Unauthorized) => {
            Err(StartupError::Other(anyhow::anyhow!(
                "discord.bot.token (GUILDGATE__DISCORD__BOT__TOKEN): Discord refused the bot token (401 Unauthorized); copy the token again from the Bot page of your application in the Discord Developer Portal, or remove [discord.bot] to run without a bot"
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the bot token with Discord now; live membership will keep trying");
            Ok(())
        }
    }
}
